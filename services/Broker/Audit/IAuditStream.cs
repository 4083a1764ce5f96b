namespace SecretsBroker.Broker.Audit;

/// <summary>Where audit events go first: the Redis stream the audit service consumes.</summary>
public interface IAuditStream
{
    /// <summary>False when no stream is configured (events then stay in the spool).</summary>
    bool IsConfigured { get; }

    /// <summary>
    /// Appends events in order, stopping at the first failure. Returns how many were appended (a prefix of
    /// <paramref name="events"/>); never throws for Redis being unreachable.
    /// </summary>
    Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken);

    /// <summary>The stream's length (XLEN) read with the last append, or null when unknown or not a stream.</summary>
    long? LengthAfterAppend => null;

    /// <summary>Reads the stream's length (XLEN); null when unknown (Redis unreachable, or not a stream).</summary>
    Task<long?> ReadLengthAsync(CancellationToken cancellationToken) => Task.FromResult<long?>(null);
}
