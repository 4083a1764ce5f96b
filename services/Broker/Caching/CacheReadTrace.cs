namespace SecretsBroker.Broker.Caching;

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
