using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Rotation;
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
        var replicas = new[] { a, b };
        var joined = replicas.Select(r => new MetricCollector<long>(r.Services.GetRequiredService<IMeterFactory>(), RotationMetrics.MeterName,
            "secretsbroker.rotation.joined")).ToArray();
        // The path's lock is held (as by a third replica) until every call is in, so all 16 overlap whatever the scheduling.
        var held = await RotationFixture.HoldRotationLockAsync(a, "aws/" + name);

        // Eight callers on each replica: on each, one starts the replica's rotation and seven join it.
        var calls = Enumerable.Range(0, 16).Select(i => replicas[i % 2].CreateClient().RotateSecretAsync("aws/" + name)).ToArray();
        await Eventually.WaitUntilAsync(() => joined.All(j => j.GetMeasurementSnapshot().Sum(m => m.Value) == 7), because: "7 calls join on each replica");
        Assert.DoesNotContain(calls, call => call.IsCompleted);
        // Released without an outcome (a holder that died): one replica takes the lock and rotates, the other answers its outcome.
        await held.DisposeAsync();
        var results = await Task.WhenAll(calls);
        foreach (var collector in joined)
        {
            collector.Dispose();
        }

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

    [Fact]
    public async Task A_waiter_answers_the_outcome_of_a_holder_that_took_the_lock_and_finished_between_two_of_its_looks()
    {
        // While the waiter's clock stands still, a second holder rotates and releases unseen.
        var outcome = await WaitThroughADeadHolderAsync(locks => PublishAsync(locks, "sealed-key-of-a-path", "quick-successor", "3"), "sealed-key-of-a-path");
        Assert.Equal("3", outcome?.Result?.Version);
    }

    [Fact]
    public async Task A_waiter_on_a_lock_freed_without_a_new_outcome_gets_none_and_never_an_outcome_from_before_it_arrived()
    {
        Assert.Null(await WaitThroughADeadHolderAsync(_ => Task.CompletedTask, "sealed-key-of-another-path"));
    }

    /// <summary>
    /// Redis locks on a fake clock: an earlier rotation's outcome is there, a holder takes the lock, a waiter starts
    /// waiting, the holder goes away without an outcome, then <paramref name="meanwhile"/>; the waiter's answer.
    /// </summary>
    private async Task<RotationOutcome?> WaitThroughADeadHolderAsync(Func<IRotationLocks, Task> meanwhile, string key)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var rig = new RotationRig(time, new VersionedMemoryStore(time), every: "1h", extra: CacheTestSettings.WithRedis(_redis));
        var locks = rig.Services.GetRequiredService<IRotationLocks>();
        await PublishAsync(locks, key, "an-earlier-rotation", "2");

        var dying = await locks.TryAcquireAsync(key, "dies-without-an-outcome");
        var waiting = locks.WaitForHolderAsync(key, await locks.LastOutcomeIdAsync(key), CancellationToken.None);
        await dying!.DisposeAsync();
        await meanwhile(locks);
        await Eventually.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            return waiting.IsCompleted;
        }, because: "the waiter looks again");
        return await waiting;
    }

    private static async Task PublishAsync(IRotationLocks locks, string key, string rotationId, string version)
    {
        var held = await locks.TryAcquireAsync(key, rotationId);
        Assert.NotNull(held);
        await locks.PublishOutcomeAsync(key, rotationId, new RotationOutcome(new RotationResult(version, "1", null, "generated"), null, null));
        await held.DisposeAsync();
    }
}
