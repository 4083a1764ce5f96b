using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.Infrastructure;

/// <summary>Audit events as a broker emits them: path sealed with the test deployment key, appended to the stream.</summary>
public static class TestEvents
{
    public static readonly string KeyBase64 = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes("audit-tests key: 32 bytes long!!"));

    public static readonly AuditKey Key = AuditKey.FromBase64(KeyBase64);

    public static AuditEvent Make(string caller, string path, Decision decision = Decision.Allow, string action = "read", DateTimeOffset? time = null,
        string? id = null, string? token = null)
    {
        var auditEvent = new AuditEvent
        {
            Id = id ?? Guid.NewGuid().ToString(),
            Time = Timestamp.FromDateTimeOffset(time ?? DateTimeOffset.UtcNow),
            BrokerInstance = "broker-test-1",
            RequestId = Guid.NewGuid().ToString("N"),
            Caller = caller,
            AuthMethod = caller.Length == 0 ? "" : "dev-token",
            SourceAddress = "127.0.0.1:50000",
            Action = action,
            Path = path,
            Mount = path.Split('/')[0],
            Decision = decision,
            Reason = decision == Decision.Deny ? "policy denies it" : "",
            GrpcStatus = decision switch { Decision.Deny => 7, Decision.Error => 5, _ => 0 },
            CacheSource = decision == Decision.Allow ? "backend" : "",
            Latency = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(3)),
            TokenHmac = token is null ? "" : Key.Hmac(token),
        };
        auditEvent.CallerAttributes.Add("team", "alpha");
        Key.SealPath(auditEvent);
        return auditEvent;
    }

    /// <summary>The key brokers configured with <see cref="KeyBase64"/> authenticate their events with (derived from it).</summary>
    public static readonly AuditEventMacKey MacKey = AuditEventMacKey.FromAuditKey(KeyBase64);

    /// <summary>An <c>event</c> field and its <c>mac</c> field, as a broker writes them.</summary>
    public static NameValueEntry[] Fields(byte[] eventBytes) =>
        [new(AuditStream.EventField, eventBytes), new(AuditStream.MacField, MacKey.Compute(eventBytes))];

    /// <summary>XADDs a group of events as one entry, as the broker does: an <c>event</c> field (binary protobuf) and its <c>mac</c> per event.</summary>
    public static Task<RedisValue> AppendGroupAsync(IDatabase database, IEnumerable<AuditEvent> events, string stream = AuditStream.DefaultKey) =>
        database.StreamAddAsync(stream, [.. events.SelectMany(e => Fields(e.ToByteArray()))]);

    /// <summary>XADDs each event as an entry of its own (its event and mac fields), pipelined.</summary>
    public static async Task AppendAsync(IDatabase database, IEnumerable<AuditEvent> events, string stream = AuditStream.DefaultKey)
    {
        var adds = events.Select(e => database.StreamAddAsync(stream, Fields(e.ToByteArray()))).ToArray();
        await Task.WhenAll(adds);
    }
}
