using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>
/// Turns a stream entry into the events to store: one per <c>event</c> field (a broker puts a group of
/// events into one entry), or a rejected entry for a field that is not one (not a protobuf AuditEvent, no
/// id), or for an entry without any <c>event</c> field. An event that arrives with a plaintext path (a
/// broker that did not seal it) is sealed here, so the store never holds a readable path.
/// </summary>
public sealed class StreamEntryDecoder(AuditKey auditKey)
{
    public const int MaxEventIdLength = 128;

    /// <summary>What one <c>event</c> field of an entry decoded to: an event, or why it was rejected.</summary>
    public readonly record struct Decoded(IncomingEvent? Event, RejectedEntry? Rejected, bool SealedHere);

    public IReadOnlyList<Decoded> Decode(StreamEntry entry)
    {
        var streamId = entry.Id.ToString();
        var decoded = new List<Decoded>(entry.Values.Length);
        foreach (var field in entry.Values)
        {
            if (field.Name == AuditStream.EventField)
            {
                decoded.Add(DecodeEvent(streamId, (byte[])field.Value!));
            }
        }
        if (decoded.Count == 0)
        {
            var all = string.Join(',', entry.Values.Select(v => v.Name.ToString()));
            decoded.Add(new(null, Reject(streamId, $"no '{AuditStream.EventField}' field", System.Text.Encoding.UTF8.GetBytes(all)), false));
        }
        return decoded;
    }

    private Decoded DecodeEvent(string streamId, byte[] bytes)
    {
        AuditEvent auditEvent;
        try
        {
            auditEvent = AuditEvent.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            return new(null, Reject(streamId, "not a protobuf AuditEvent", bytes), false);
        }
        if (auditEvent.Id.Length == 0)
        {
            return new(null, Reject(streamId, "the event has no id", bytes), false);
        }
        if (auditEvent.Id.Length > MaxEventIdLength)
        {
            return new(null, Reject(streamId, $"the event id is longer than {MaxEventIdLength} characters", bytes), false);
        }
        if (auditEvent.Time is null)
        {
            // The stream entry id starts with the milliseconds at which Redis accepted it.
            var milliseconds = long.TryParse(streamId.AsSpan(0, Math.Max(0, streamId.IndexOf('-'))), out var ms) ? ms : 0;
            auditEvent.Time = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(milliseconds));
        }
        var sealedHere = false;
        if (auditEvent.Path.Length > 0)
        {
            auditKey.SealPath(auditEvent);
            sealedHere = true;
        }
        return new(new IncomingEvent(streamId, auditEvent), null, sealedHere);
    }

    private static RejectedEntry Reject(string streamId, string reason, byte[] bytes) =>
        new(streamId, reason, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));
}
