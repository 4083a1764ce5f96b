using System.Security.Cryptography;
using Google.Protobuf;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>The chain hash and the checks Verify runs on a row, the same for every store engine.</summary>
public static class RecordChecks
{
    /// <summary>SHA-256 (lower-case hex) over the previous hash's bytes (none before the first record) and the record's bytes.</summary>
    public static string ChainHash(string previousHash, ReadOnlySpan<byte> record)
    {
        // One-shot SHA256.HashData over both parts (no hash object per record: this runs once per stored event).
        var length = previousHash.Length / 2 + record.Length;
        var rented = length > 1024 ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
        var input = rented is null ? stackalloc byte[length] : rented.AsSpan(0, length);
        var previous = input[..(previousHash.Length / 2)];
        previous.Clear();
        Convert.FromHexString(previousHash, previous, out _, out _);
        record.CopyTo(input[previous.Length..]);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(input, digest);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
        return Convert.ToHexStringLower(digest);
    }

    public const string PrefixMismatch = "the path prefix index does not match the record";

    public static bool IsHex(string value) => value.Length % 2 == 0 && value.All(Uri.IsHexDigit);

    /// <summary>Why the indexed columns of a row do not match its record's bytes, or null when they do.</summary>
    public static string? CheckColumns(byte[] record, string eventId, long eventTime, string caller, string action, int decision, string? prefixes)
    {
        AuditEvent auditEvent;
        try
        {
            auditEvent = AuditEvent.Parser.ParseFrom(record);
        }
        catch (InvalidProtocolBufferException)
        {
            return "the record bytes are not an AuditEvent";
        }
        if (eventId != auditEvent.Id)
        {
            return "column event_id does not match the record";
        }
        if (auditEvent.Time is null || eventTime != AuditStore.UnixNanos(auditEvent.Time))
        {
            return "column event_time does not match the record";
        }
        if (caller != auditEvent.Caller)
        {
            return "column caller does not match the record";
        }
        if (action != auditEvent.Action)
        {
            return "column action does not match the record";
        }
        if (decision != (int)auditEvent.Decision)
        {
            return "column decision does not match the record";
        }
        var indexed = prefixes is null ? [] : prefixes.Split(',').ToHashSet(StringComparer.Ordinal);
        return indexed.SetEquals(auditEvent.PathPrefixHmacs) ? null : PrefixMismatch;
    }
}
