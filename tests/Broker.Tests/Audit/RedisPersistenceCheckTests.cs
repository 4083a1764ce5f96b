using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;

namespace SecretsBroker.Broker.Tests.Audit;

/// <summary>
/// Issue 17, item 11: strict audit is only as durable as Redis. The broker reads Redis's persistence at start and after
/// every reconnect and says what it can promise in readiness and <c>secretsbroker_audit_redis_persistence</c>.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisPersistenceCheckTests
{
    [Fact]
    public async Task A_redis_without_an_append_only_file_is_named_in_readiness_and_the_metric_then_rechecked_after_a_reconnect()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis).MemoryMount("mem"), configureServices: new InMemoryBackend().Register);

        await Eventually.WaitUntilAsync(async () => await PersistenceAsync(host) == 0,
            TimeSpan.FromSeconds(30), "persistence gauge 0 (no append-only file)");
        var (status, body) = await host.GetAsync("/healthz/ready");
        Assert.Equal(200, status);
        Assert.Contains("appendonly no", body, StringComparison.Ordinal);

        // The operator fixes Redis; the broker learns it on its next reconnect.
        var admin = await redis.DatabaseAsync();
        await admin.ExecuteAsync("CONFIG", "SET", "appendonly", "yes");
        await admin.ExecuteAsync("CONFIG", "SET", "appendfsync", "always");
        await admin.ExecuteAsync("CLIENT", "KILL", "TYPE", "normal");

        await Eventually.WaitUntilAsync(async () => await PersistenceAsync(host) == 2,
            TimeSpan.FromSeconds(30), "persistence gauge 2 after the reconnect");
        Assert.DoesNotContain("appendonly no", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_redis_with_appendfsync_always_raises_no_warning()
    {
        using var data = new TestDirectory();
        await using var redis = await RedisServer.StartAsync(durableIn: data.Path);
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis).MemoryMount("mem"), configureServices: new InMemoryBackend().Register);

        await Eventually.WaitUntilAsync(async () => await PersistenceAsync(host) == 2,
            TimeSpan.FromSeconds(30), "persistence gauge 2 (appendfsync always)");
        Assert.DoesNotContain("warning", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
    }

    private static async Task<double?> PersistenceAsync(BrokerHost host)
    {
        var samples = ManagementPort.Parse(await host.ScrapeAsync()).Where(s => s.Name == "secretsbroker_audit_redis_persistence").ToList();
        return samples.Count == 0 ? null : samples.Sum(s => s.Value);
    }
}
