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
/// broker that did not seal it) is sealed here, so the store never holds a readable path. Before anything else,
/// each event's MAC (the <c>mac</c> field right after it) is checked: an event without a valid one is rejected
/// unread, so a forged event can neither be stored nor claim a real event's id (the store de-duplicates by id).
/// </summary>
public sealed class StreamEntryDecoder(AuditKey auditKey, AuditEventAuthenticator authenticator)
{
    public const int MaxEventIdLength = 128;

    /// <summary>What one <c>event</c> field of an entry decoded to: an event, or why it was rejected (and whether for its MAC).</summary>
    public readonly record struct Decoded(IncomingEvent? Event, RejectedEntry? Rejected, bool SealedHere,
        AuditEventMacFailure Unauthenticated = AuditEventMacFailure.None);

    public IReadOnlyList<Decoded> Decode(StreamEntry entry)
    {
        var streamId = entry.Id.ToString();
        var decoded = new List<Decoded>(entry.Values.Length);
        var fields = entry.Values;
        for (var i = 0; i < fields.Length; i++)
        {
            if (fields[i].Name == AuditStream.EventField)
            {
                var mac = i + 1 < fields.Length && fields[i + 1].Name == AuditStream.MacField ? (string?)fields[i + 1].Value : null;
                decoded.Add(DecodeEvent(streamId, (byte[])fields[i].Value!, mac));
            }
        }
        if (decoded.Count == 0)
        {
            var all = string.Join(',', entry.Values.Select(v => v.Name.ToString()));
            decoded.Add(new(null, Reject(streamId, $"no '{AuditStream.EventField}' field", System.Text.Encoding.UTF8.GetBytes(all)), false));
        }
        return decoded;
    }

    private Decoded DecodeEvent(string streamId, byte[] bytes, string? mac)
    {
        // Checked first: nothing of an unauthenticated event is trusted, not even its id.
        var failure = authenticator.Verify(bytes, mac);
        if (failure != AuditEventMacFailure.None)
        {
            return new(null, Reject(streamId, $"unauthenticated: {MacFailureText(failure)}", bytes), false, failure);
        }
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
        var changed = false;
        if (auditEvent.Time is null)
        {
            changed = true;
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
        var incoming = new IncomingEvent(streamId, auditEvent, sealedHere || changed ? null : bytes);
        _ = incoming.Record; // serialized here (when changed), on the decoding task, not inside the store's transaction
        return new(incoming, null, sealedHere);
    }

    /// <summary>The reason recorded with a rejected event; the metric's label is <see cref="AuditEventMacFailure"/> itself.</summary>
    public static string MacFailureText(AuditEventMacFailure failure) => failure switch
    {
        AuditEventMacFailure.Missing => "no mac",
        AuditEventMacFailure.Malformed => "malformed mac",
        AuditEventMacFailure.UnknownKey => "unknown key id",
        _ => "mac does not match",
    };

    private static RejectedEntry Reject(string streamId, string reason, byte[] bytes) =>
        new(streamId, reason, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));
}
