using System.Diagnostics.Metrics;
using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Leases;

/// <summary>The lease keeper's instruments (meter <c>SecretsBroker.Leases</c>); labels are mount prefixes and fixed outcome names.</summary>
public sealed class LeaseMetrics
{
    private readonly Histogram<double> _lateness;
    private readonly Counter<long> _renewals;
    private readonly Counter<long> _silentReplicaLeases;

    /// <param name="mounts">Null only in unit tests that build the keeper without a mount table.</param>
    public LeaseMetrics(IMeterFactory meterFactory, MountTable? mounts = null)
    {
        Meter = meterFactory.Create("SecretsBroker.Leases");
        // Seconds, Prometheus' base unit for durations (promtool check metrics flags other units).
        _lateness = Meter.CreateHistogram<double>("secretsbroker.lease.renewal.lateness", "s", "How late renewals started after their due time");
        _renewals = Meter.CreateCounter<long>("secretsbroker.lease.renewals", description: "Lease renewals by mount and outcome (renewed, failed)");
        _silentReplicaLeases = Meter.CreateCounter<long>("secretsbroker.lease.silent_replica_leases",
            description: "Leases of replicas that stopped heartbeating (crashed), handed to the grace period by this replica");
        _silentReplicaLeases.Add(0);
        // Every outcome of every lease-issuing mount at zero from start, so an alert sees the first failure.
        foreach (var mounted in mounts?.Mounts.Where(m => m.Backend is ICredentialIssuing) ?? [])
        {
            foreach (var outcome in (string[])["renewed", "failed"])
            {
                _renewals.Add(0, new KeyValuePair<string, object?>("mount", mounted.Mount.Prefix), new KeyValuePair<string, object?>("outcome", outcome));
            }
        }
    }

    /// <summary>The meter, for the keeper's observable gauge of active leases.</summary>
    public Meter Meter { get; }

    public void RenewalStarted(TimeSpan lateness) => _lateness.Record(lateness.TotalSeconds);

    public void SilentReplicaLeases(int count) => _silentReplicaLeases.Add(count);

    public void Renewal(string mount, string outcome) =>
        _renewals.Add(1, new KeyValuePair<string, object?>("mount", mount), new KeyValuePair<string, object?>("outcome", outcome));
}
