using System.Diagnostics.Metrics;
using Microsoft.Extensions.Caching.Distributed;

namespace SecretsBroker.Broker.Caching;

/// <summary>
/// The L2 as FusionCache sees it: every value is sealed with the key ring before it reaches Redis and
/// opened after it comes back. A value that does not open (tampered, sealed with an unknown key,
/// malformed) is a miss: counted, logged without the value, never returned.
/// </summary>
public sealed partial class EncryptingDistributedCache(IDistributedCache inner, CacheKeyRing keys, CacheMetrics metrics, ILogger<EncryptingDistributedCache> logger)
    : IDistributedCache
{
    public byte[]? Get(string key) => Open(key, inner.Get(key));

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default) =>
        Open(key, await inner.GetAsync(key, token).ConfigureAwait(false));

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => inner.Set(key, keys.Seal(key, value), options);

    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) =>
        inner.SetAsync(key, keys.Seal(key, value), options, token);

    public void Refresh(string key) => inner.Refresh(key);

    public Task RefreshAsync(string key, CancellationToken token = default) => inner.RefreshAsync(key, token);

    public void Remove(string key) => inner.Remove(key);

    public Task RemoveAsync(string key, CancellationToken token = default) => inner.RemoveAsync(key, token);

    private byte[]? Open(string key, byte[]? envelope)
    {
        if (envelope is null)
        {
            return null;
        }
        var failure = keys.TryUnseal(key, envelope, out var plaintext, out var keyId);
        if (failure != UnsealFailure.None)
        {
            metrics.RejectedEntry(failure);
            LogRejected(failure, keyId ?? "-");
            return null;
        }
        CacheReadTrace.Current?.MarkDistributedHit(key);
        return plaintext;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A cache entry from Redis was rejected and treated as a miss ({Failure}, key id {KeyId})")]
    private partial void LogRejected(UnsealFailure failure, string keyId);
}

/// <summary>Counters of the secret cache (meter <c>SecretsBroker.Cache</c>), also readable in process for tests.</summary>
public sealed class CacheMetrics : IDisposable
{
    public const string MeterName = "SecretsBroker.Cache";

    private readonly Meter _meter;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _reads;
    private long _rejectedCount;

    public CacheMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _rejected = _meter.CreateCounter<long>("secretsbroker.cache.rejected_entries", description: "Redis entries that failed to open (tampered, unknown key, malformed)");
        _reads = _meter.CreateCounter<long>("secretsbroker.cache.reads", description: "Secret reads by serving source");
    }

    /// <summary>Entries from Redis that failed authentication or could not be opened, since start.</summary>
    public long RejectedEntries => Interlocked.Read(ref _rejectedCount);

    public void RejectedEntry(UnsealFailure reason)
    {
        Interlocked.Increment(ref _rejectedCount);
        _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
    }

    public void Read(string mount, string source, bool stale) =>
        _reads.Add(1, new("mount", mount), new("source", source), new("stale", stale));

    public void Dispose() => _meter.Dispose();
}

/// <summary>
/// Records, for one read, whether its entry came out of Redis. FusionCache runs its L2 read in the
/// caller's execution context, so the encrypting layer can mark the trace the read path placed there.
/// </summary>
public sealed class CacheReadTrace(string entryKey)
{
    private static readonly AsyncLocal<CacheReadTrace?> Ambient = new();
    private volatile bool _closed;

    public static CacheReadTrace? Current
    {
        get => Ambient.Value;
        set => Ambient.Value = value;
    }

    public bool DistributedHit { get; private set; }

    public bool BackendCalled { get; private set; }

    public void MarkDistributedHit(string redisKey)
    {
        // Only the entry itself counts: FusionCache also reads its own tag entries through L2.
        if (!_closed && redisKey.EndsWith(entryKey, StringComparison.Ordinal))
        {
            DistributedHit = true;
        }
    }

    public void MarkBackendCalled()
    {
        if (!_closed)
        {
            BackendCalled = true;
        }
    }

    /// <summary>Stops recording, so background work (an eager refresh) cannot relabel a read already answered.</summary>
    public void Close() => _closed = true;
}
