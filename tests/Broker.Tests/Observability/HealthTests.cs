using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// gRPC health (grpc.health.v1) on the broker's port: "" is liveness, "readiness" and the API's
/// service name are readiness; HTTP /healthz/* on the management port say the same.
/// </summary>
[Trait("Category", "Integration")]
public sealed class HealthTests
{
    private static Dictionary<string, string?> Settings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "mem",
            ["Broker:Mounts:0:Type"] = "memory",
            // Probe on every check, so the test sees a change at once.
            ["Broker:Health:ProbeCacheDuration"] = "00:00:00",
        };
        return settings;
    }

    [Fact]
    public async Task Readiness_is_not_serving_while_a_required_backend_is_down_and_serving_again_after()
    {
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(Settings(), configureServices: memory.Register);
        var health = HealthClient(host);

        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, ""));
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, "readiness"));
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, "secretsbroker.v1.SecretsBroker"));

        memory.Down = true;
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "readiness NOT_SERVING while the backend is down");
        Assert.Equal(ServingStatus.NotServing, await StatusAsync(health, "secretsbroker.v1.SecretsBroker"));
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, ""));
        var (status, body) = await host.GetAsync("/healthz/ready");
        Assert.Equal(503, status);
        Assert.Contains("mem (memory): in-memory backend is down", body, StringComparison.Ordinal);
        Assert.Equal(200, (await host.GetAsync("/healthz/live")).Status);

        memory.Down = false;
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.Serving,
            TimeSpan.FromSeconds(30), "readiness SERVING again once the backend is back");
        Assert.Equal(200, (await host.GetAsync("/healthz/ready")).Status);
    }

    [Fact]
    public async Task A_backend_that_is_not_required_only_degrades_readiness()
    {
        var memory = new InMemoryBackend();
        var settings = Settings();
        settings["Broker:Health:BackendsRequired"] = "false";
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var health = HealthClient(host);
        memory.Down = true;

        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.StartsWith("Degraded", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "readiness degraded");
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, "readiness"));
        Assert.Equal(200, (await host.GetAsync("/healthz/ready")).Status);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Readiness_follows_redis_when_redis_is_required()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Health:RedisRequired"] = "true";
        settings["Broker:Health:ProbeTimeout"] = "00:00:01";
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var health = HealthClient(host);

        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.Serving,
            TimeSpan.FromSeconds(30), "readiness SERVING with Redis up");

        await redis.KillAsync();
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "readiness NOT_SERVING while the required Redis is down");
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, ""));
        Assert.Contains("redis: Unhealthy", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);

        await redis.RestartAsync();
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.Serving,
            TimeSpan.FromSeconds(60), "readiness SERVING again after Redis is back (the connection reconnects by itself)");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Redis_that_is_not_required_only_degrades_readiness()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Health:ProbeTimeout"] = "00:00:01";
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var health = HealthClient(host);
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.StartsWith("Healthy", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "readiness healthy with Redis up");

        await redis.KillAsync();
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.Contains("redis: Degraded", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "Redis degraded");
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, "readiness"));
    }

    [Fact]
    public async Task Readiness_follows_vault_sys_health_sealed_and_unsealed()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(VaultFixture.Seed);
        var settings = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = VaultFixture.BrokerToken,
            ["Broker:Health:ProbeCacheDuration"] = "00:00:00",
        });
        await using var host = await BrokerHost.StartAsync(settings);
        var health = HealthClient(host);
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, "readiness"));

        vault.SetFaults("""{ "sealed": true }""");
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "readiness NOT_SERVING while Vault is sealed");
        Assert.Contains("vault connection 'default' is sealed", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
        Assert.Equal(ServingStatus.Serving, await StatusAsync(health, ""));

        vault.ResetFaults();
        await Eventually.WaitUntilAsync(async () => await StatusAsync(health, "readiness") == ServingStatus.Serving,
            TimeSpan.FromSeconds(30), "readiness SERVING once Vault is unsealed");
    }

    [Fact]
    public async Task In_strict_mode_readiness_fails_when_no_audit_event_could_be_recorded()
    {
        var directory = new TestDirectory();
        directory.WriteFile("not-a-directory", "the spool cannot be created beneath a file");
        var settings = Settings();
        settings["Broker:Audit:SpoolDirectory"] = "not-a-directory/spool";
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(settings, directory, memory.Register);

        Assert.Equal(ServingStatus.NotServing, await StatusAsync(HealthClient(host), "readiness"));
        Assert.Contains("audit: Unhealthy", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Events_waiting_in_the_audit_spool_degrade_readiness_until_redis_takes_them()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Health:ProbeTimeout"] = "00:00:01";
        settings["Broker:Audit:ReplayInterval"] = "00:00:00.100";
        settings["Broker:Audit:StreamTimeout"] = "00:00:00.500";
        var memory = new InMemoryBackend();
        memory.Put("a", "1", new Dictionary<string, string> { ["k"] = "FAKE-health-audit-value" });
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/a");
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.Contains("audit: Healthy", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "audit healthy with Redis up");

        await redis.KillAsync();
        await client.GetSecretAsync("mem/a");
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.Contains("audit events wait in the spool", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "audit degraded while events wait in the spool");
        Assert.Equal(ServingStatus.Serving, await StatusAsync(HealthClient(host), "readiness"));

        await redis.RestartAsync();
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Body.Contains("audit: Healthy", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), "audit healthy again once the spool is replayed into Redis");
    }

    [Fact]
    public async Task Health_needs_no_credentials_and_an_unknown_service_is_not_found()
    {
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(Settings(), configureServices: memory.Register);
        var health = HealthClient(host);

        var failure = await Assert.ThrowsAsync<RpcException>(() => health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, failure.StatusCode);
    }

    internal static Health.HealthClient HealthClient(BrokerHost host)
    {
        var channel = GrpcChannel.ForAddress(host.Address);
        return new Health.HealthClient(channel);
    }

    internal static async Task<ServingStatus> StatusAsync(Health.HealthClient client, string service) =>
        (await client.CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(10))).Status;
}
