using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>
/// Turns a stream entry into an event to store, or into a rejected entry when it is not one (no
/// <c>event</c> field, not a protobuf AuditEvent, no id). An event that arrives with a plaintext path
/// (a broker that did not seal it) is sealed here, so the store never holds a readable path.
/// </summary>
public sealed class StreamEntryDecoder(AuditKey auditKey)
{
    public const int MaxEventIdLength = 128;

    public (IncomingEvent? Event, RejectedEntry? Rejected, bool SealedHere) Decode(StreamEntry entry)
    {
        var streamId = entry.Id.ToString();
        var value = entry[AuditStream.EventField];
        if (value.IsNull)
        {
            var all = string.Join(',', entry.Values.Select(v => v.Name.ToString()));
            return (null, Reject(streamId, $"no '{AuditStream.EventField}' field", System.Text.Encoding.UTF8.GetBytes(all)), false);
        }
        var bytes = (byte[])value!;
        AuditEvent auditEvent;
        try
        {
            auditEvent = AuditEvent.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            return (null, Reject(streamId, "not a protobuf AuditEvent", bytes), false);
        }
        if (auditEvent.Id.Length == 0)
        {
            return (null, Reject(streamId, "the event has no id", bytes), false);
        }
        if (auditEvent.Id.Length > MaxEventIdLength)
        {
            return (null, Reject(streamId, $"the event id is longer than {MaxEventIdLength} characters", bytes), false);
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
        return (new IncomingEvent(streamId, auditEvent), null, sealedHere);
    }

    private static RejectedEntry Reject(string streamId, string reason, byte[] bytes) =>
        new(streamId, reason, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));
}
