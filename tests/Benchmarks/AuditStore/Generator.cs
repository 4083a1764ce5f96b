using Google.Protobuf.WellKnownTypes;
using Npgsql;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Benchmarks.AuditStore;

/// <summary>Events shaped like a broker's: 1,000 callers, 100 teams, 5% denied, paths sealed with a benchmark key.</summary>
internal sealed class Generator(AuditKey key)
{
    public const int Callers = 1000;
    public const int Teams = 100;

    public static readonly string KeyBase64 = Convert.ToBase64String("audit-bench key: fake, 32 bytes!"u8.ToArray());

    public AuditEvent Make(long i, DateTimeOffset time)
    {
        var caller = $"svc-{i * 7919 % Callers}";
        var deny = i % 20 == 0;
        var auditEvent = new AuditEvent
        {
            Id = Guid.CreateVersion7(time).ToString(), // as the broker makes them (AuditEventId): time-ordered
            Time = Timestamp.FromDateTimeOffset(time),
            BrokerInstance = "broker-bench-1",
            RequestId = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Caller = caller,
            AuthMethod = "jwt",
            SourceAddress = "10.0.0.1:50000",
            Action = "read",
            Path = $"kv/teams/t{i % Teams}/app{i % 10}/secret{i % 50}",
            Mount = "kv",
            Decision = deny ? Decision.Deny : Decision.Allow,
            Reason = deny ? "policy denies it" : "",
            GrpcStatus = deny ? 7 : 0,
            CacheSource = deny ? "" : "cache",
            Latency = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1)),
        };
        key.SealPath(auditEvent);
        return auditEvent;
    }
}

/// <summary>A database per benchmark part on the PostgreSQL server given by --connection (created fresh).</summary>
internal static class Databases
{
    public static string Connection(string admin, string name) => new NpgsqlConnectionStringBuilder(admin) { Database = "audit_bench_" + name }.ConnectionString;

    public static async Task CreateAsync(string provider, string? admin, string name)
    {
        if (provider != "postgres")
        {
            return;
        }
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS audit_bench_{name}", connection);
        await drop.ExecuteNonQueryAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE audit_bench_{name}", connection);
        await create.ExecuteNonQueryAsync();
    }
}
