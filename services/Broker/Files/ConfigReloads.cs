using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace SecretsBroker.Broker.Files;

/// <summary>
/// What became of the last reload of each watched configuration file (the policy file, local secrets files).
/// A broken edit keeps the previous contents; this makes that visible: a failure counter and a health gauge by
/// file kind (<c>policy</c>, <c>secrets</c>; meter <c>SecretsBroker.Config</c>) and a degraded readiness check
/// that names the file, never its contents.
/// </summary>
public sealed class ConfigReloads : IDisposable
{
    public const string MeterName = "SecretsBroker.Config";

    /// <summary>The values of the <c>file</c> label: the kinds of files the broker reloads.</summary>
    public static readonly string[] FileKinds = ["policy", "secrets", "keyring"];

    private readonly Meter _meter;
    private readonly Counter<long> _failures;
    private readonly ConcurrentDictionary<string, Watched> _files = new(StringComparer.Ordinal);

    public ConfigReloads(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _failures = _meter.CreateCounter<long>("secretsbroker.config.reload.failures", "{reload}",
            "Reloads of a changed configuration file that failed (previous contents kept), by file kind (policy, secrets, keyring)");
        _meter.CreateObservableGauge("secretsbroker.config.reload.healthy", ObserveHealthy, "{file}",
            "1 when the last reload of every watched file of this kind succeeded, 0 while one serves previous contents after a failed reload");
        // Every kind at zero from start, so the alert sees the first failure.
        foreach (var kind in FileKinds)
        {
            _failures.Add(0, new KeyValuePair<string, object?>("file", kind));
        }
    }

    /// <summary>Starts tracking a watched file. <paramref name="kind"/> is one of <see cref="FileKinds"/>; <paramref name="description"/> names it in health.</summary>
    public Watched Track(string kind, string description)
    {
        if (!FileKinds.Contains(kind, StringComparer.Ordinal))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a known configuration file kind");
        }
        var watched = new Watched(this, kind, description);
        _files[description] = watched;
        return watched;
    }

    /// <summary>Descriptions of the files whose last reload failed, with why (never their contents).</summary>
    public IReadOnlyList<string> Failing() =>
        [.. _files.Values.Select(w => w.Failure).OfType<string>().Order(StringComparer.Ordinal)];

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<int>> ObserveHealthy() =>
        FileKinds.Select(kind => new Measurement<int>(_files.Values.Any(w => w.Kind == kind && w.Failure is not null) ? 0 : 1,
            new KeyValuePair<string, object?>("file", kind)));

    /// <summary>One watched file: its reloads report here.</summary>
    public sealed class Watched(ConfigReloads owner, string kind, string description)
    {
        private volatile string? _failure;

        public string Kind => kind;

        /// <summary>Null while the file's current contents are its latest; else what failed.</summary>
        public string? Failure => _failure;

        public void Succeeded() => _failure = null;

        public void Failed(string reason)
        {
            _failure = $"{description}: the last change could not be loaded ({reason}); serving the previous contents";
            owner._failures.Add(1, new KeyValuePair<string, object?>("file", kind));
        }
    }
}

/// <summary>Readiness: degraded (still serving) while a watched configuration file serves previous contents after a failed reload.</summary>
public sealed class ConfigReloadsHealthCheck(ConfigReloads reloads) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(reloads.Failing() is { Count: > 0 } failing
            ? HealthCheckResult.Degraded(string.Join("; ", failing))
            : HealthCheckResult.Healthy("configuration files loaded"));
}
