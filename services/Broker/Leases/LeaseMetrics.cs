using System.Diagnostics.Metrics;

namespace SecretsBroker.Broker.Leases;

/// <summary>The lease keeper's instruments (meter <c>SecretsBroker.Leases</c>); labels are mount prefixes and fixed outcome names.</summary>
public sealed class LeaseMetrics
{
    private readonly Histogram<double> _lateness;
    private readonly Counter<long> _renewals;

    public LeaseMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create("SecretsBroker.Leases");
        _lateness = Meter.CreateHistogram<double>("secretsbroker.lease.renewal.lateness", "ms", "How late renewals started after their due time");
        _renewals = Meter.CreateCounter<long>("secretsbroker.lease.renewals", description: "Lease renewals by mount and outcome (renewed, failed)");
    }

    /// <summary>The meter, for the keeper's observable gauge of active leases.</summary>
    public Meter Meter { get; }

    public void RenewalStarted(TimeSpan lateness) => _lateness.Record(lateness.TotalMilliseconds);

    public void Renewal(string mount, string outcome) =>
        _renewals.Add(1, new KeyValuePair<string, object?>("mount", mount), new KeyValuePair<string, object?>("outcome", outcome));
}
