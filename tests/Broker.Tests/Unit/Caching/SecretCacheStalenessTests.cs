using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Tests.Unit.Support;
using ZiggyCreatures.Caching.Fusion;

namespace SecretsBroker.Broker.Tests.Unit.Caching;

/// <summary>
/// Cache freshness and staleness of <see cref="SecretCache"/> over an in-process FusionCache, with the broker's clock
/// faked: max_age, TTL, fail-safe within MaxStaleness, and answers (NOT_FOUND ...) that are never hidden.
/// </summary>
public sealed class SecretCacheStalenessTests
{
    [Fact]
    public async Task A_cached_value_is_served_from_memory_with_its_age_while_within_its_ttl()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));

        var first = await cache.ReadAsync();
        await cache.ElapseAsync(TimeSpan.FromMinutes(2));
        var second = await cache.ReadAsync();

        Assert.Equal((ServingSource.Backend, TimeSpan.Zero, false), (first.Source, first.Age, first.Stale));
        Assert.Equal((ServingSource.L1, TimeSpan.FromMinutes(2), false), (second.Source, second.Age, second.Stale));
        Assert.Equal(1, cache.Backend.Reads);
    }

    [Fact]
    public async Task A_value_older_than_the_reads_max_age_is_read_from_the_backend()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));
        await cache.ReadAsync();
        await cache.ElapseAsync(TimeSpan.FromMinutes(2));

        var lenient = await cache.ReadAsync(new ReadFreshness(MaxAge: TimeSpan.FromMinutes(5)));
        Assert.Equal((ServingSource.L1, TimeSpan.FromMinutes(2)), (lenient.Source, lenient.Age));
        Assert.Equal(1, cache.Backend.Reads);

        cache.Backend.Version = "2";
        var strict = await cache.ReadAsync(new ReadFreshness(MaxAge: TimeSpan.FromMinutes(1)));
        Assert.Equal((ServingSource.Backend, TimeSpan.Zero, "2"), (strict.Source, strict.Age, strict.Value.Version));
        Assert.Equal(2, cache.Backend.Reads);

        // The backend read replaced the cached value: the next plain read is fresh from memory.
        var after = await cache.ReadAsync();
        Assert.Equal((ServingSource.L1, TimeSpan.Zero, "2"), (after.Source, after.Age, after.Value.Version));
    }

    [Fact]
    public async Task A_max_age_the_cached_value_cannot_meet_while_the_backend_is_down_is_UNAVAILABLE_not_a_stale_value()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));
        await cache.ReadAsync();
        await cache.ElapseAsync(TimeSpan.FromMinutes(2));
        cache.Backend.Failure = BrokerErrorKind.Unavailable;

        var error = await Assert.ThrowsAsync<BrokerException>(() => cache.ReadAsync(new ReadFreshness(MaxAge: TimeSpan.FromMinutes(1))));

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Equal(2, cache.Backend.Reads);
    }

    [Fact]
    public async Task Bypassing_the_cache_always_reads_the_backend()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));
        await cache.ReadAsync();

        var bypass = await cache.ReadAsync(new ReadFreshness(BypassCache: true));

        Assert.Equal(ServingSource.Backend, bypass.Source);
        Assert.Equal(2, cache.Backend.Reads);
    }

    [Fact]
    public async Task With_the_backend_down_a_value_past_its_ttl_is_served_flagged_stale_until_max_staleness_then_UNAVAILABLE()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(1), maxStaleness: TimeSpan.FromMinutes(10));
        await cache.ReadAsync();
        cache.Backend.Failure = BrokerErrorKind.Unavailable;

        await cache.ElapseAsync(TimeSpan.FromMinutes(5));
        var stale = await cache.ReadAsync();

        Assert.Equal((ServingSource.L1, TimeSpan.FromMinutes(5), true, "1"), (stale.Source, stale.Age, stale.Stale, stale.Value.Version));
        Assert.Equal(2, cache.Backend.Reads); // the backend was asked first

        await cache.ElapseAsync(TimeSpan.FromMinutes(5));
        var oldest = await cache.ReadAsync();
        Assert.Equal((TimeSpan.FromMinutes(10), true), (oldest.Age, oldest.Stale));

        await cache.ElapseAsync(TimeSpan.FromSeconds(1));
        var error = await Assert.ThrowsAsync<BrokerException>(() => cache.ReadAsync());
        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);

        cache.Backend.Failure = null;
        var recovered = await cache.ReadAsync();
        Assert.Equal((ServingSource.Backend, TimeSpan.Zero, false), (recovered.Source, recovered.Age, recovered.Stale));
    }

    public static TheoryData<BrokerErrorKind> EveryErrorKind() => new(Enum.GetValues<BrokerErrorKind>());

    [Theory]
    [MemberData(nameof(EveryErrorKind))]
    public async Task Only_outages_fall_back_to_a_stale_value_every_other_answer_reaches_the_caller(BrokerErrorKind kind)
    {
        // SecretCache's contract: UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are outages; NOT_FOUND and the
        // rest are answers, and a cached value must never hide them (a deleted secret stays deleted).
        BrokerErrorKind[] outages = [BrokerErrorKind.Unavailable, BrokerErrorKind.DeadlineExceeded, BrokerErrorKind.ResourceExhausted];
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(1), maxStaleness: TimeSpan.FromHours(1));
        await cache.ReadAsync();
        cache.Backend.Failure = kind;
        await cache.ElapseAsync(TimeSpan.FromMinutes(2));

        if (outages.Contains(kind))
        {
            var stale = await cache.ReadAsync();
            Assert.True(stale.Stale);
            Assert.Equal("1", stale.Value.Version);
        }
        else
        {
            var error = await Assert.ThrowsAsync<BrokerException>(() => cache.ReadAsync());
            Assert.Equal(kind, error.Kind);
        }
        Assert.Equal(2, cache.Backend.Reads);
    }

    [Fact]
    public async Task NOT_FOUND_from_the_backend_is_never_hidden_behind_a_cached_value()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(1), maxStaleness: TimeSpan.FromHours(1));
        var cached = await cache.ReadAsync();
        Assert.Equal("1", cached.Value.Version);

        cache.Backend.Failure = BrokerErrorKind.NotFound; // the secret was deleted
        await cache.ElapseAsync(TimeSpan.FromMinutes(2));

        var error = await Assert.ThrowsAsync<BrokerException>(() => cache.ReadAsync());
        Assert.Equal(BrokerErrorKind.NotFound, error.Kind);
    }

    [Fact]
    public async Task A_mount_with_caching_disabled_reads_the_backend_every_time()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1), enabled: false);

        await cache.ReadAsync();
        var second = await cache.ReadAsync();

        Assert.Equal(ServingSource.Backend, second.Source);
        Assert.Equal(2, cache.Backend.Reads);
    }

    [Fact]
    public async Task A_read_that_began_before_a_write_and_answered_after_its_invalidation_leaves_no_old_value_behind()
    {
        // Three replicas on one Redis (tests/Benchmarks/Fleet, replicas) served the old version for seconds after a write,
        // until the next write: a read that fetched the old value before the write put it back into the cache after the
        // write had dropped it.
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cache.Backend.Hold = held.Task;
        var racing = cache.ReadAsync();
        Assert.Equal(1, cache.Backend.Reads); // the backend has answered version 1; the answer is still on its way
        cache.Backend.Hold = null;

        await cache.ElapseAsync(TimeSpan.FromMilliseconds(5));
        cache.Backend.Version = "2";
        await cache.InvalidateWrittenAsync();
        held.SetResult();
        Assert.Equal("1", (await racing).Value.Version); // it began before the write: the old version is its answer

        var after = await cache.ReadAsync();
        Assert.Equal(("2", ServingSource.Backend), (after.Value.Version, after.Source));
        var next = await cache.ReadAsync();
        Assert.Equal(("2", ServingSource.L1), (next.Value.Version, next.Source));
    }

    [Fact]
    public async Task An_invalidation_announced_by_another_replica_drops_values_fetched_before_its_time()
    {
        using var cache = new CacheUnderTest(ttl: TimeSpan.FromMinutes(5), maxStaleness: TimeSpan.FromHours(1));
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cache.Backend.Hold = held.Task;
        var racing = cache.ReadAsync();
        cache.Backend.Hold = null;
        await cache.ElapseAsync(TimeSpan.FromMilliseconds(5));
        cache.Backend.Version = "2";
        await cache.InvalidateLatestAsync(cache.Now);
        held.SetResult();
        await racing;

        var after = await cache.ReadAsync();
        Assert.Equal(("2", ServingSource.Backend), (after.Value.Version, after.Source));
    }

    /// <summary>A reader that answers the current version or fails with the kind it is told (no I/O).</summary>
    private sealed class ScriptedReader : ISecretReading
    {
        private int _reads;

        public string Version { get; set; } = "1";

        public BrokerErrorKind? Failure { get; set; }

        public int Reads => Volatile.Read(ref _reads);

        /// <summary>When set, a read takes the version current now and answers it only once this completes.</summary>
        public Task? Hold { get; set; }

        public async Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _reads);
            if (Failure is { } kind)
            {
                throw new BrokerException(kind, "scripted failure");
            }
            var version = Version;
            if (Hold is { } hold)
            {
                await hold;
            }
            return new SecretValue { Version = version, Data = new Dictionary<string, string> { ["password"] = "FAKE-cache-password-" + version } };
        }
    }

    /// <summary>
    /// A <see cref="SecretCache"/> over an in-memory FusionCache. FusionCache 2.9 has no TimeProvider option (it keeps
    /// time with the system clock; FusionCache issue #544 asks for one), while the broker measures ages and staleness
    /// with its TimeProvider. So letting time pass is two steps, done together by <see cref="ElapseAsync"/>: the fake
    /// clock advances, and once the TTL has passed the FusionCache entry is expired as its own clock would have done
    /// (IFusionCache.ExpireAsync: logically expired, still there as a fail-safe fallback).
    /// </summary>
    private sealed class CacheUnderTest : IDisposable
    {
        private const string Name = "app/db";
        private static readonly MountDefinition Mount = new("mem", "memory");

        private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        private readonly ObservableTimeProvider _time = new();
        private readonly FusionCache _fusion = new(new FusionCacheOptions());
        private readonly CacheKeyRing _keys;
        private readonly SecretCache _cache;
        private readonly TimeSpan _ttl;
        private TimeSpan _sinceBackendRead;

        public CacheUnderTest(TimeSpan ttl, TimeSpan maxStaleness, bool enabled = true)
        {
            _ttl = ttl;
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Mounts:0:Prefix"] = Mount.Prefix,
                ["Broker:Mounts:0:Type"] = Mount.Type,
                ["Broker:Mounts:0:Cache:Enabled"] = enabled ? "true" : "false",
                ["Broker:Mounts:0:Cache:Ttl"] = ttl.ToString("c"),
                ["Broker:Mounts:0:Cache:MaxStaleness"] = maxStaleness.ToString("c"),
            }).Build();
            var options = Options.Create(new CacheOptions());
            _keys = new CacheKeyRing(options);
            var metrics = new CacheMetrics(_services.GetRequiredService<IMeterFactory>());
            _cache = new SecretCache(_fusion, _keys, new MountCachePolicies(configuration, options), metrics, _time, options,
                Options.Create(new RedisOptions()), NullLogger<SecretCache>.Instance);
        }

        public ScriptedReader Backend { get; } = new();

        public async Task<ServedSecret> ReadAsync(ReadFreshness? freshness = null)
        {
            var served = await _cache.GetAsync(new ResolvedSecret(Mount.Prefix + "/" + Name, Mount, Name, Backend), VersionSelector.Latest,
                freshness ?? ReadFreshness.Default, CancellationToken.None);
            if (served.Source == ServingSource.Backend)
            {
                _sinceBackendRead = TimeSpan.Zero;
            }
            return served;
        }

        public DateTimeOffset Now => _time.GetUtcNow();

        /// <summary>What the broker does after a write on this replica (PutSecret, RotateSecret).</summary>
        public Task InvalidateWrittenAsync() => _cache.InvalidateWrittenAsync(Mount, Name);

        /// <summary>What every replica does when a write or a new version is announced (the watch channel), with its time.</summary>
        public Task InvalidateLatestAsync(DateTimeOffset announced) => _cache.InvalidateLatestAsync(Mount, Name, announced);

        public async Task ElapseAsync(TimeSpan elapsed)
        {
            _time.Advance(elapsed);
            _sinceBackendRead += elapsed;
            if (_sinceBackendRead >= _ttl)
            {
                await _fusion.ExpireAsync(_keys.EntryKey(Mount, Name, VersionSelector.Latest), new FusionCacheEntryOptions { IsFailSafeEnabled = true });
            }
        }

        public void Dispose()
        {
            _fusion.Dispose();
            _services.Dispose();
        }
    }
}
