using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Replicas;

/// <summary>
/// Two audit-service processes in one consumer group on one PostgreSQL and one redis-server, ingesting at
/// once while a broker-like producer appends grouped entries; one is killed with SIGKILL mid-stream. The
/// survivor claims what the dead one had read but not acknowledged, and the store ends with every produced
/// event exactly once in one contiguous chain that verifies.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PostgresReplicaTests(PostgresServerFixture postgres) : RedisAndStoreTest, IClassFixture<PostgresServerFixture>
{
    [Fact]
    public async Task Two_replicas_one_killed_mid_stream_store_every_event_once_in_one_verified_chain()
    {
        await using var backend = await PostgresBackend.CreateAsync(postgres.Server);
        string[] arguments =
        [
            .. backend.ServiceArguments,
            "--Audit:Ingestion:BatchSize=50",
            // The survivor claims the killed replica's pending entries soon after it dies.
            "--Audit:Ingestion:ClaimMinIdle=00:00:01",
            "--Audit:Ingestion:ClaimInterval=00:00:00.500",
        ];
        await using var first = await AuditServiceProcess.StartAsync(Redis, StorePath, "replica-a", arguments);
        await using var second = await AuditServiceProcess.StartAsync(Redis, StorePath, "replica-b", arguments);
        var database = await Redis.DatabaseAsync();

        // As brokers write: several events per stream entry (event + mac fields each), entries back to back.
        var produced = Enumerable.Range(0, 3000).Select(i => TestEvents.Make($"caller-{i % 7}", $"kv/teams/t{i % 13}/s{i}",
            i % 9 == 0 ? Decision.Deny : Decision.Allow)).ToList();
        var producer = Task.Run(async () =>
        {
            foreach (var group in produced.Chunk(4))
            {
                await TestEvents.AppendGroupAsync(database, group);
            }
        });

        await Eventually.WaitUntilAsync(async () => await backend.CountAsync("SELECT COUNT(*) FROM audit_records") >= 600,
            TimeSpan.FromSeconds(120), "both replicas storing");
        var consumers = await database.StreamConsumerInfoAsync(Contracts.AuditStream.DefaultKey, "secretsbroker-audit");
        Assert.Contains(consumers, c => c.Name == "replica-a");
        Assert.Contains(consumers, c => c.Name == "replica-b");
        await first.KillAsync();
        await producer;

        await Eventually.WaitUntilAsync(async () =>
        {
            Assert.False(second.HasExited, "the surviving replica exited:\n" + string.Join('\n', second.Output));
            return await backend.CountAsync("SELECT COUNT(*) FROM audit_records") >= produced.Count;
        }, TimeSpan.FromSeconds(180), "every produced event stored");

        Assert.Equal(produced.Count, await backend.CountAsync("SELECT COUNT(*) FROM audit_records"));
        Assert.Equal(produced.Count, await backend.CountAsync("SELECT COUNT(DISTINCT event_id) FROM audit_records"));
        Assert.Equal(1, await backend.CountAsync("SELECT MIN(sequence) FROM audit_records"));
        Assert.Equal(produced.Count, await backend.CountAsync("SELECT MAX(sequence) FROM audit_records"));
        var stored = await second.QueryAllAsync(new QueryRequest { Limit = 1000 });
        Assert.Equal(produced.Select(e => e.Id).Order(StringComparer.Ordinal), stored.Select(s => s.Event.Id).Order(StringComparer.Ordinal));
        var verify = await second.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(produced.Count, verify.RecordsChecked);
    }
}
