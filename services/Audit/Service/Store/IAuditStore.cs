namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// The hash-chained audit store, whichever engine holds it (<see cref="AuditStore"/> on SQLite, the embedded
/// default; <see cref="PostgresAuditStore"/> for replicas on several hosts). Both keep the same invariant:
/// every append reads the chain head inside its write transaction, so writers sharing the store keep one
/// unbroken chain, and an event id is stored at most once.
/// </summary>
public interface IAuditStore : IDisposable
{
    /// <summary>
    /// Stores every event whose id is not stored yet, in order, and records the rejected entries, in one
    /// transaction: when this returns, all of it is durable; when it throws, none of it was written.
    /// </summary>
    Task<AppendResult> AppendAsync(IReadOnlyList<IncomingEvent> events, IReadOnlyList<RejectedEntry> rejected, CancellationToken cancellationToken);

    /// <summary>Records matching every filter, by ascending sequence after <see cref="QueryFilter.AfterSequence"/>, at most <see cref="QueryFilter.Limit"/> (also the read-from-sequence primitive).</summary>
    IReadOnlyList<StoredRecord> Query(QueryFilter filter);

    /// <summary>Every record in sequence order (for export), read in one snapshot.</summary>
    IEnumerable<StoredRecord> ReadAll();

    /// <summary>The record retention left in place of what it deleted, if it ran.</summary>
    ChainAnchor? ReadAnchor();

    /// <summary>Recomputes the chain from the anchor (or the start); stops at the first broken record.</summary>
    VerifyResult Verify(CancellationToken cancellationToken);

    /// <summary>Deletes the oldest records older than <paramref name="cutoff"/> as a prefix of the chain and moves the anchor; returns how many.</summary>
    Task<long> DeleteOlderThanAsync(DateTimeOffset cutoff, CancellationToken cancellationToken);

    /// <summary>Whether the store can be reached and read (throws when it cannot).</summary>
    bool CanRead();
}
