using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// gRPC health (grpc.health.v1) on the broker's port: "" is liveness, "readiness" and the API's
/// service name are readiness; HTTP /healthz/* on the management port say the same.
/// </summary>
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
    public async Task Health_needs_no_credentials_and_an_unknown_service_is_not_found()
    {
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(Settings(), configureServices: memory.Register);
        var health = HealthClient(host);

        var failure = await Assert.ThrowsAsync<RpcException>(() => health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, failure.StatusCode);
    }

    private static Health.HealthClient HealthClient(BrokerHost host)
    {
        var channel = GrpcChannel.ForAddress(host.Address);
        return new Health.HealthClient(channel);
    }

    private static async Task<ServingStatus> StatusAsync(Health.HealthClient client, string service) =>
        (await client.CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(10))).Status;
}
