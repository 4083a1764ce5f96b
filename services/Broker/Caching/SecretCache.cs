using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Core;
using ZiggyCreatures.Caching.Fusion;

namespace SecretsBroker.Broker.Caching;

/// <summary>What the caller accepts: a maximum age of a cached value, or no cache at all.</summary>
public sealed record ReadFreshness(TimeSpan? MaxAge = null, bool BypassCache = false)
{
    public static readonly ReadFreshness Default = new();
}

/// <summary>A value as cached: the backend's answer and when the broker read it.</summary>
public sealed record CachedSecret(SecretValue Value, DateTimeOffset FetchedAt);

/// <summary>
/// Read-through secret cache on FusionCache: L1 in process, L2 in Redis (sealed), stampede protection
/// (one backend call per key at a time), eager refresh, fail-safe up to the mount's max staleness, and
/// backplane invalidation across replicas. Only transient backend failures (UNAVAILABLE, DEADLINE_EXCEEDED,
/// RESOURCE_EXHAUSTED) fall back to a stale value; NOT_FOUND and the like are answered as they are.
/// </summary>
public sealed partial class SecretCache(
    IFusionCache cache,
    CacheKeyRing keys,
    MountCachePolicies policies,
    CacheMetrics metrics,
    TimeProvider time,
    IOptions<CacheOptions> options,
    IOptions<RedisOptions> redisOptions,
    ILogger<SecretCache> logger) : IDisposable
{
    private readonly ConcurrentDictionary<MountCachePolicy, FusionCacheEntryOptions> _entryOptions = new();

    // When each entry key was last invalidated (a write here, or a new version announced by any replica). A read that
    // began before a write can answer after the write dropped the entry and put the old value back (here or in Redis);
    // a cached value fetched before the invalidation is therefore never served, whatever put it back. Bounded, and kept
    // as long as such a value could be served (the mount's max staleness).
    private readonly MemoryCache _invalidated = new(new MemoryCacheOptions { SizeLimit = 10_000 });

    public async Task<ServedSecret> GetAsync(ResolvedSecret secret, VersionSelector selector, ReadFreshness freshness, CancellationToken cancellationToken)
    {
        var (path, mount, name, reader) = secret;
        var policy = policies.For(mount);
        if (!policy.Enabled)
        {
            var value = await reader.GetAsync(name, selector, cancellationToken).ConfigureAwait(false);
            return Served(path, mount, new CachedSecret(value, time.GetUtcNow()), ServingSource.Backend, policy);
        }

        var key = keys.EntryKey(mount, name, selector);
        var entryOptions = _entryOptions.GetOrAdd(policy, CreateEntryOptions);
        if (!freshness.BypassCache)
        {
            var (entry, source) = await ReadThroughAsync(key, secret, selector, entryOptions, cancellationToken).ConfigureAwait(false);
            var age = source == ServingSource.Backend ? TimeSpan.Zero : Age(entry);
            if (age <= policy.MaxStaleness && (freshness.MaxAge is not { } maxAge || age <= maxAge) && !FetchedBeforeInvalidation(key, entry, source))
            {
                return Served(path, mount, entry, source, policy);
            }
            LogRefreshingOldValue(mount.Prefix);
        }

        // Bypass, or the cached value is older than this read accepts: only the backend will do, and a
        // backend failure is the caller's answer (no stale fallback).
        var refreshOptions = entryOptions.Duplicate()
            .SetSkipMemoryCacheRead()
            .SetSkipDistributedCacheRead(true);
        var (fresh, freshSource) = await ReadThroughAsync(key, secret, selector, refreshOptions, cancellationToken).ConfigureAwait(false);
        if (freshSource != ServingSource.Backend)
        {
            // With both reads skipped FusionCache has no stale value to fall back on; this is a guard.
            BrokerException.ThrowUnavailable("the backend is unavailable and the cached value is older than this read accepts");
        }
        return Served(path, mount, fresh, ServingSource.Backend, policy);
    }

    /// <summary>Expires every entry of a mount on every replica (tag expiry travels through Redis and the backplane).</summary>
    public async Task InvalidateMountAsync(MountDefinition mount)
    {
        await cache.RemoveByTagAsync(keys.MountTag(mount)).ConfigureAwait(false);
        LogMountInvalidated(mount.Prefix);
    }

    /// <summary>Drops the cached latest value of one secret here, in Redis and (through the backplane) on every replica.</summary>
    /// <remarks><paramref name="announced"/>: when the new version was known (the announcing replica's clock); values fetched before it are not served again.</remarks>
    public async Task InvalidateLatestAsync(MountDefinition mount, string name, DateTimeOffset announced)
    {
        var policy = policies.For(mount);
        if (!policy.Enabled)
        {
            return;
        }
        var key = keys.EntryKey(mount, name, VersionSelector.Latest);
        MarkInvalidated(key, announced, policy);
        await cache.RemoveAsync(key).ConfigureAwait(false);
    }

    /// <summary>
    /// After a write: drops the entries a new version changes (the latest, and on aws-sm the AWS stage labels that move)
    /// here, in Redis and on every replica, waiting for Redis and the backplane publish rather than leaving them to the
    /// background. Entries of a given version id keep their value (a version never changes).
    /// </summary>
    public async Task InvalidateWrittenAsync(MountDefinition mount, string name)
    {
        var policy = policies.For(mount);
        if (!policy.Enabled)
        {
            return;
        }
        var written = time.GetUtcNow();
        var removal = new FusionCacheEntryOptions
        {
            Size = 1,
            AllowBackgroundDistributedCacheOperations = false,
            AllowBackgroundBackplaneOperations = false,
            DistributedCacheSoftTimeout = redisOptions.Value.Timeout,
            DistributedCacheHardTimeout = redisOptions.Value.Timeout,
        };
        IEnumerable<VersionSelector> selectors = mount.Type == "aws-sm"
            ? [VersionSelector.Latest, .. MovingStages.Select(stage => new VersionSelector(Stage: stage))]
            : [VersionSelector.Latest];
        foreach (var selector in selectors)
        {
            var key = keys.EntryKey(mount, name, selector);
            MarkInvalidated(key, written, policy);
            await cache.RemoveAsync(key, removal).ConfigureAwait(false);
        }
    }

    private void MarkInvalidated(string key, DateTimeOffset at, MountCachePolicy policy)
    {
        // Announcements can arrive out of order: the latest time stays.
        if (_invalidated.TryGetValue(key, out DateTimeOffset known) && known >= at)
        {
            return;
        }
        var keep = (policy.MaxStaleness > policy.Ttl ? policy.MaxStaleness : policy.Ttl) + TimeSpan.FromMinutes(1);
        _invalidated.Set(key, at, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = keep });
    }

    /// <summary>Whether a cached value was fetched before its entry's last invalidation (a backend answer is always served).</summary>
    private bool FetchedBeforeInvalidation(string key, CachedSecret entry, ServingSource source) =>
        source != ServingSource.Backend && _invalidated.TryGetValue(key, out DateTimeOffset at) && entry.FetchedAt < at;

    /// <summary>The labels a write or a rotation moves (AWS documents these three; custom labels only move when named).</summary>
    private static readonly string[] MovingStages = ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"];

    private async Task<(CachedSecret Entry, ServingSource Source)> ReadThroughAsync(string key, ResolvedSecret secret, VersionSelector selector,
        FusionCacheEntryOptions entryOptions, CancellationToken cancellationToken)
    {
        var trace = new CacheReadTrace(key);
        CacheReadTrace.Current = trace;
        try
        {
            var entry = await cache.GetOrSetAsync<CachedSecret>(
                key,
                async (context, ct) =>
                {
                    try
                    {
                        // Stamped when the read began: a value read before a write is older than the write's invalidation.
                        var started = time.GetUtcNow();
                        var value = await secret.Reader.GetAsync(secret.Name, selector, ct).ConfigureAwait(false);
                        trace.MarkBackendCalled();
                        return new CachedSecret(value, started);
                    }
                    catch (BrokerException ex) when (!ex.Kind.IsTransient())
                    {
                        // An answer, not an outage: never hide it behind a stale value.
                        context.Options.IsFailSafeEnabled = false;
                        throw;
                    }
                },
                entryOptions,
                keys.MountTags(secret.Mount),
                cancellationToken).ConfigureAwait(false);
            var source = trace.BackendCalled ? ServingSource.Backend : trace.DistributedHit ? ServingSource.L2 : ServingSource.L1;
            return (entry, source);
        }
        finally
        {
            // Closed, not cleared: this async method's change to the ambient trace ends with it (the caller's
            // execution context is restored), and clearing it would allocate another context on every read.
            trace.Close();
        }
    }

    private ServedSecret Served(string path, MountDefinition mount, CachedSecret entry, ServingSource source, MountCachePolicy policy)
    {
        var age = source == ServingSource.Backend ? TimeSpan.Zero : Age(entry);
        var stale = age > policy.Ttl;
        metrics.Read(mount.Prefix, source.ToString(), stale);
        if (stale)
        {
            LogServedStale(mount.Prefix, (long)age.TotalMilliseconds);
        }
        return new ServedSecret(path, mount, entry.Value, source, age, stale);
    }

    private TimeSpan Age(CachedSecret entry)
    {
        var age = time.GetUtcNow() - entry.FetchedAt;
        return age < TimeSpan.Zero ? TimeSpan.Zero : age;
    }

    private FusionCacheEntryOptions CreateEntryOptions(MountCachePolicy policy)
    {
        var settings = options.Value;
        var entryOptions = new FusionCacheEntryOptions
        {
            Duration = policy.Ttl,
            // L1 holds at most CacheOptions.L1MaxEntries entries.
            Size = 1,
            IsFailSafeEnabled = policy.MaxStaleness > policy.Ttl,
            FailSafeMaxDuration = policy.MaxStaleness,
            // After a failed refresh, the stale value is reused this long before the backend is tried again.
            FailSafeThrottleDuration = policy.Ttl < TimeSpan.FromSeconds(5) ? policy.Ttl : TimeSpan.FromSeconds(5),
            DistributedCacheSoftTimeout = redisOptions.Value.Timeout,
            DistributedCacheHardTimeout = redisOptions.Value.Timeout,
            // The L2 write finishes before a backend read is answered, so another replica told by the
            // backplane finds the new value in Redis (Redis stalls are bounded by the timeouts above).
            AllowBackgroundDistributedCacheOperations = false,
            AllowBackgroundBackplaneOperations = true,
            ReThrowDistributedCacheExceptions = false,
            ReThrowBackplaneExceptions = false,
            ReThrowSerializationExceptions = false,
        };
        if (settings.SkipL1)
        {
            entryOptions.SetSkipMemoryCache();
        }
        if (settings.EagerRefreshThreshold > 0)
        {
            entryOptions.EagerRefreshThreshold = settings.EagerRefreshThreshold;
        }
        return entryOptions;
    }

    public void Dispose() => _invalidated.Dispose();

    [LoggerMessage(Level = LogLevel.Debug, Message = "Served a stale cached value for mount {Mount} ({AgeMs} ms old): its backend could not be reached")]
    private partial void LogServedStale(string mount, long ageMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Cached value for mount {Mount} is older than the read accepts or than its last invalidation; reading the backend")]
    private partial void LogRefreshingOldValue(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache entries of mount {Mount} invalidated on every replica")]
    private partial void LogMountInvalidated(string mount);
}
