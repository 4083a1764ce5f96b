using System.Diagnostics.Metrics;

namespace SecretsBroker.Broker.Caching;

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
        // Every reason at zero from start, so an alert on increase() sees the first rejected entry.
        foreach (var reason in Enum.GetValues<UnsealFailure>().Where(r => r != UnsealFailure.None))
        {
            _rejected.Add(0, new KeyValuePair<string, object?>("reason", reason.ToString()));
        }
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
