using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Unit.Rotation;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>
/// Two replicas on one real redis-server: RotateSecret on the same path on both at once makes exactly one new version in
/// the store (aws-sm in moto, versions counted with boto3) and every caller gets it; two schedulers with the same due
/// secret rotate it once (the Redis locks of RotationLocks.cs: <c>scheduler</c> and the per-path lock).
/// </summary>
[Trait("Category", "Integration")]
public sealed class ReplicaRotationTests(MotoServer moto) : IClassFixture<MotoServer>, IAsyncLifetime
{
    private readonly string _run = "p" + Guid.NewGuid().ToString("N")[..10];
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    private Dictionary<string, string?> Configuration()
    {
        var settings = moto.MountConfiguration();
        foreach (var (key, value) in CacheTestSettings.WithRedis(_redis))
        {
            settings[key] = value;
        }
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Rotation:0:Paths"] = $"aws/{_run}/**";
        settings["Broker:Rotation:0:Strategy"] = "generated";
        settings["Broker:Rotation:0:Fields:0"] = "api_key";
        return settings;
    }

    private async Task<BrokerHost> StartReplicaAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", RotationFixture.AwsPolicy);
        return await BrokerHost.StartAsync(Configuration(), directory);
    }

    [Fact]
    public async Task RotateSecret_on_two_replicas_at_once_makes_one_version_and_every_caller_gets_it()
    {
        var name = $"{_run}/api";
        var first = (string)(await moto.Boto3Async(new { op = "create", name, @string = """{"api_key":"FAKE-old-api-key"}""" }))["VersionId"]!;
        await using var a = await StartReplicaAsync();
        await using var b = await StartReplicaAsync();
        var clients = new[] { a.CreateClient(), b.CreateClient() };

        // Eight callers on each replica, released together.
        using var go = new ManualResetEventSlim();
        var calls = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            go.Wait();
            return await clients[i % 2].RotateSecretAsync("aws/" + name);
        })).ToArray();
        go.Set();
        var results = await Task.WhenAll(calls);

        var version = Assert.Single(results.Select(r => r.Version).Distinct());
        Assert.All(results, r => Assert.Equal(first, r.PreviousVersion));
        var versions = (await moto.Boto3Async(new { op = "versions", name }))["Versions"]!.AsArray();
        Assert.Equal(2, versions.Count);
        Assert.Contains(versions, v => (string)v!["VersionId"]! == version);
    }

    [Fact]
    public async Task Two_schedulers_with_the_same_due_secret_rotate_it_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var store = new VersionedMemoryStore(time);
        store.Put("keys/a", new Dictionary<string, string> { ["api_key"] = "FAKE-initial" }, time.GetUtcNow());
        var redis = CacheTestSettings.WithRedis(_redis);
        await using var a = new RotationRig(time, store, every: "1h", extra: redis);
        await using var b = new RotationRig(time, store, every: "1h", extra: redis);

        time.Advance(TimeSpan.FromHours(1));
        for (var pass = 0; pass < 5; pass++)
        {
            await Task.WhenAll(Task.Run(a.PassAsync), Task.Run(b.PassAsync));
        }

        Assert.Equal(2, store.Versions("keys/a").Count);
        // One rotation's writes only (pending record, promotion, closing the record), and no replica saw a failure
        // (a second rotation would write its own pending record and fail its check-and-set promotion).
        Assert.Equal(3, store.WriteAttempts);
        Assert.Empty(a.Metrics.Failing);
        Assert.Empty(b.Metrics.Failing);
    }
}
