using Google.Protobuf;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// An event read off the stream, ready to store (its path already sealed). <paramref name="Received"/>: the bytes it was
/// parsed from, when the consumer changed nothing in it; they are stored as they came (the broker's own serialization,
/// authenticated by its MAC) instead of serializing the event again.
/// </summary>
public sealed record IncomingEvent(string StreamId, AuditEvent Event, byte[]? Received = null)
{
    private byte[]? _record = Received;

    /// <summary>
    /// The event's protobuf bytes as stored, serialized once on first use (the consumer does it while decoding, off the
    /// store's transaction); the event must not change after that.
    /// </summary>
    public byte[] Record => _record ??= Event.ToByteArray();
}

/// <summary>
/// A stream entry that is not an audit event. Only its size and SHA-256 are kept, never its bytes, since
/// a malformed entry could hold anything.
/// </summary>
public sealed record RejectedEntry(string StreamId, string Reason, int Size, string Sha256);

/// <summary>What an append did: the events it stored (new ids), how many it ignored as already stored, how many rejected entries it recorded.</summary>
public sealed record AppendResult(IReadOnlyList<IncomingEvent> Stored, int Duplicates, int Rejected);

/// <summary>Filters of a query; null means "any".</summary>
public sealed record QueryFilter(
    long AfterSequence,
    int Limit,
    long? FromUnixNanos = null,
    long? ToUnixNanos = null,
    string? Caller = null,
    string? Action = null,
    Decision? Decision = null,
    string? PathPrefixHmac = null);

/// <summary>
/// One record as it is in the store: the event's protobuf bytes and its links in the chain. When a column
/// has the wrong SQLite storage class, <paramref name="Unreadable"/> says which and <paramref name="Record"/> is empty.
/// </summary>
public sealed record StoredRecord(long Sequence, byte[] Record, string PreviousHash, string Hash, long StoredAtUnixMilliseconds, string? Unreadable = null)
{
    /// <summary>The stored event, or null with <paramref name="unreadable"/> saying why (a wrong storage class, or bytes that are not an AuditEvent).</summary>
    public AuditEvent? ParseEvent(out string unreadable)
    {
        unreadable = Unreadable ?? "";
        if (Unreadable is not null)
        {
            return null;
        }
        try
        {
            return AuditEvent.Parser.ParseFrom(Record);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            unreadable = "the record bytes are not an AuditEvent";
            return null;
        }
    }
}

public sealed record VerifyResult(bool Ok, long RecordsChecked, long FirstBrokenSequence, string Detail);

/// <summary>The record that stands in for everything retention deleted: the chain continues from its hash.</summary>
public sealed record ChainAnchor(long Sequence, string Hash);
