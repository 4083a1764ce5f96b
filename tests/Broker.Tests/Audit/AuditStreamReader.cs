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
        return [.. entries.Select(e =>
        {
            var auditEvent = AuditEvent.Parser.ParseFrom((byte[])e[AuditStream.EventField]!);
            return (auditEvent, Key.OpenPath(auditEvent));
        })];
    }

    public static async Task<long> LengthAsync(RedisServer redis) => await (await redis.DatabaseAsync()).StreamLengthAsync(AuditStream.DefaultKey);
}
