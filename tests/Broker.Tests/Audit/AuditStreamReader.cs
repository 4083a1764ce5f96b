using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Audit;

/// <summary>Reads the audit stream the brokers under test wrote, decoding each entry and opening its sealed path.</summary>
public static class AuditStreamReader
{
    public static readonly AuditKey Key = AuditKey.FromBase64(BrokerHost.TestAuditKey);

    public static async Task<IReadOnlyList<(AuditEvent Event, string? Path)>> ReadAllAsync(RedisServer redis)
    {
        var database = await redis.DatabaseAsync();
        var entries = await database.StreamRangeAsync(AuditStream.DefaultKey);
        // An entry holds a group of events, one `event` field each.
        return [.. entries.SelectMany(e => e.Values).Where(field => field.Name == AuditStream.EventField).Select(field =>
        {
            var auditEvent = AuditEvent.Parser.ParseFrom((byte[])field.Value!);
            return (auditEvent, Key.OpenPath(auditEvent));
        })];
    }
}
