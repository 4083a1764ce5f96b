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
