using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Rotation instruments (meter <c>SecretsBroker.Rotation</c>): rotations by mount, strategy and outcome (every configured
/// combination at zero from start), calls that joined a running rotation, the last success per mount, secrets past due, and the rotations failing now (for
/// readiness details). Labels are mount prefixes and fixed names, never paths.
/// </summary>
public sealed class RotationMetrics
{
    public const string MeterName = "SecretsBroker.Rotation";

    private readonly Counter<long> _rotations;
    private readonly Counter<long> _joined;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastSuccess = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RotationFailure> _failing = new(StringComparer.Ordinal);
    private long _overdue;

    public RotationMetrics(IMeterFactory meterFactory, MountTable mounts, RotationRules rules)
    {
        var meter = meterFactory.Create(MeterName);
        _rotations = meter.CreateCounter<long>("secretsbroker.rotations", description: "Rotations by mount, strategy and outcome (success, failure)");
        _joined = meter.CreateCounter<long>("secretsbroker.rotation.joined",
            description: "RotateSecret calls that joined the rotation already running for their path instead of starting another");
        meter.CreateObservableGauge("secretsbroker.rotation.last_success", () => _lastSuccess.Select(kv =>
            new Measurement<double>(kv.Value.ToUnixTimeMilliseconds() / 1000.0, new KeyValuePair<string, object?>("mount", kv.Key))),
            "s", "Unix time of the last successful rotation per mount");
        meter.CreateObservableGauge("secretsbroker.rotation.overdue", () => Interlocked.Read(ref _overdue),
            description: "Secrets with a rotation schedule that are past due");
        meter.CreateObservableGauge("secretsbroker.rotation.failing", () => (long)_failing.Count,
            description: "Secrets whose last rotation attempt failed (retried with backoff)");
        // Every mount a rule can reach, for every strategy and outcome, at zero from start (so the first failure alerts).
        foreach (var mounted in mounts.Mounts)
        {
            foreach (var strategy in rules.All.Select(r => r.StrategyName).Distinct())
            {
                foreach (var outcome in (string[])["success", "failure"])
                {
                    _rotations.Add(0, Labels(mounted.Mount.Prefix, strategy, outcome));
                }
            }
        }
    }

    public void Succeeded(string mount, string strategy, DateTimeOffset at)
    {
        _rotations.Add(1, Labels(mount, strategy, "success"));
        _lastSuccess[mount] = at;
    }

    public void Failed(string mount, string strategy) => _rotations.Add(1, Labels(mount, strategy, "failure"));

    public void Joined(string mount) => _joined.Add(1, new KeyValuePair<string, object?>("mount", mount));

    public void SetOverdue(long count) => Interlocked.Exchange(ref _overdue, count);

    /// <summary>Records a failed attempt of a path (keyed by a sealed key, never the path) for retries and readiness.</summary>
    public void MarkFailing(string key, RotationFailure failure) => _failing[key] = failure;

    public void MarkHealthy(string key) => _failing.TryRemove(key, out _);

    public IReadOnlyDictionary<string, RotationFailure> Failing => _failing;

    private static KeyValuePair<string, object?>[] Labels(string mount, string strategy, string outcome) =>
        [new("mount", mount), new("strategy", strategy), new("outcome", outcome)];
}

/// <summary>A failing rotation: where, why (status name), how often, and when it is retried.</summary>
public sealed record RotationFailure(string Path, string Mount, string Status, int Attempts, DateTimeOffset NextAttempt)
{
    public override string ToString() => $"RotationFailure {{ Mount = {Mount}, Status = {Status}, Attempts = {Attempts} }}";
}

/// <summary>Readiness: degraded (still serving) while rotations fail; says how many per mount and why, never which paths.</summary>
public sealed class RotationHealthCheck(RotationMetrics metrics) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failing = metrics.Failing.Values.ToList();
        if (failing.Count == 0)
        {
            return Task.FromResult(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy("no failing rotations"));
        }
        var summary = string.Join("; ", failing.GroupBy(f => (f.Mount, f.Status)).OrderBy(g => g.Key.Mount, StringComparer.Ordinal)
            .Select(g => $"mount {g.Key.Mount}: {g.Count()} failing ({g.Key.Status}), retried with backoff"));
        return Task.FromResult(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Degraded("rotations failing: " + summary));
    }
}
