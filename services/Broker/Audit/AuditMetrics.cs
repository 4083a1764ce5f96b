using System.Diagnostics.Metrics;

namespace SecretsBroker.Broker.Audit;

/// <summary>Audit pipeline instruments (meter <c>SecretsBroker.Broker.Audit</c>).</summary>
public sealed class AuditMetrics
{
    public const string MeterName = "SecretsBroker.Broker.Audit";

    private readonly Meter _meter;
    private readonly Counter<long> _events;

    public AuditMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _events = _meter.CreateCounter<long>("secretsbroker.audit.events", "{event}",
            "Audit events by outcome: recorded (stream), spooled (local spool), replayed (spool to stream), failed (lost or refused), dropped (oldest of the capped local audit file)");
        // Every outcome at zero from start, so the lost-events alert sees the first failure.
        foreach (var outcome in (string[])["recorded", "spooled", "replayed", "failed", "dropped"])
        {
            _events.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }

    public void Recorded(int count) => Add(count, "recorded");

    public void Spooled(int count) => Add(count, "spooled");

    public void Replayed(int count) => Add(count, "replayed");

    public void Failed(int count) => Add(count, "failed");

    /// <summary>Events dropped from the local audit file (Broker:Audit:LocalFile) when it reached its cap.</summary>
    public void Dropped(long count) => Add((int)Math.Min(count, int.MaxValue), "dropped");

    /// <summary>Publishes the spool depth as an observable gauge.</summary>
    public void ObserveSpool(Func<long> depth) =>
        _meter.CreateObservableGauge("secretsbroker.audit.spool.depth", depth, "{event}", "Audit events waiting in the local spool");

    /// <summary>Publishes the backlog cap's state (1 while events are spooled because the stream reached Broker:Audit:MaxBacklogEntries) and the stream's length as last read.</summary>
    public void ObserveBacklog(Func<int> capped, Func<long> entries)
    {
        _meter.CreateObservableGauge("secretsbroker.audit.backlog.capped", capped, null,
            "1 while the audit stream is at Broker:Audit:MaxBacklogEntries and events go to the local spool instead, else 0");
        _meter.CreateObservableGauge("secretsbroker.audit.backlog.entries",
            () => entries() is var value and >= 0 ? [new Measurement<long>(value)] : Array.Empty<Measurement<long>>(), "{entry}",
            "Entries in the audit stream (XLEN) as last read by this broker");
    }

    /// <summary>Publishes what the broker's Redis promises for acknowledged events (<see cref="RedisPersistence"/>: -1 unknown, 0 none, 1 everysec, 2 always).</summary>
    public void ObserveRedisPersistence(Func<int> state) =>
        _meter.CreateObservableGauge("secretsbroker.audit.redis_persistence", state, null,
            "Strict audit's Redis persistence: 2 appendfsync always, 1 everysec, 0 no append-only file, -1 unknown");

    private void Add(int count, string outcome)
    {
        if (count > 0)
        {
            _events.Add(count, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }
}
