using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Observability;

/// <summary>Tags and gRPC health service names (see docs/operations.md, "Health").</summary>
public static class HealthNames
{
    /// <summary>Checks that say the process works at all; a failing one means "restart me".</summary>
    public const string LiveTag = "live";

    /// <summary>Checks that say the broker can serve reads now; a failing one means "send no traffic here".</summary>
    public const string ReadyTag = "ready";

    /// <summary>gRPC health service name for liveness: the empty name, as the protocol's overall server health.</summary>
    public const string LivenessService = "";

    /// <summary>gRPC health service names for readiness.</summary>
    public static readonly string[] ReadinessServices = ["readiness", "secretsbroker.v1.SecretsBroker"];
}

/// <summary>Liveness: the process answers, its thread pool runs work. Dependencies never make it fail.</summary>
public sealed class LivenessHealthCheck : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(HealthCheckResult.Healthy("the broker process is running"));
}

/// <summary>
/// Readiness of the mounts' backends. A backend with an <see cref="IBackendHealthProbe"/> is probed
/// (bounded by a timeout, answers reused for a few seconds); when a required mount's probe fails the
/// broker is not ready. Mounts without a probe are judged by their recent calls: a run of failed calls
/// only degrades (still SERVING), because with no traffic such a mount could never prove it is back.
/// </summary>
public sealed partial class BackendsHealthCheck(
    MountTable mounts,
    BackendCallObserver calls,
    IOptions<BrokerHealthOptions> options,
    TimeProvider time,
    ILogger<BackendsHealthCheck> logger) : IHealthCheck
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (BackendProbeResult Result, DateTimeOffset At)> _cached = new(StringComparer.Ordinal);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        var probes = mounts.Mounts.Select(m => ProbeAsync(m, settings, cancellationToken)).ToArray();
        var results = await Task.WhenAll(probes).ConfigureAwait(false);

        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var unhealthy = new List<string>();
        var degraded = new List<string>();
        foreach (var (mounted, result) in mounts.Mounts.Zip(results))
        {
            var mount = mounted.Mount;
            var label = $"{mount.Prefix} ({mount.Type})";
            if (result is { Healthy: false })
            {
                data[mount.Prefix] = "down: " + result.Description;
                (settings.IsRequired(mount.Prefix) ? unhealthy : degraded).Add($"{label}: {result.Description}");
            }
            else if (calls.ConsecutiveFailures(mount) is var failures && failures >= settings.DegradedAfterConsecutiveFailures)
            {
                data[mount.Prefix] = $"degraded: {failures} consecutive failed calls";
                degraded.Add($"{label}: {failures} consecutive failed calls");
            }
            else
            {
                data[mount.Prefix] = result is null ? "up (no probe)" : "up: " + result.Description;
            }
        }
        if (unhealthy.Count > 0)
        {
            return HealthCheckResult.Unhealthy("required backends are down: " + string.Join("; ", unhealthy.Concat(degraded)), data: data);
        }
        if (degraded.Count > 0)
        {
            return HealthCheckResult.Degraded("backends degraded: " + string.Join("; ", degraded), data: data);
        }
        return HealthCheckResult.Healthy($"{mounts.Mounts.Count} mounts up", data);
    }

    private async Task<BackendProbeResult?> ProbeAsync(MountedBackend mounted, BrokerHealthOptions settings, CancellationToken cancellationToken)
    {
        if (mounted.HealthProbe is not { } probe)
        {
            return null;
        }
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (settings.ProbeCacheDuration > TimeSpan.Zero && _cached.TryGetValue(mounted.Mount.Prefix, out var cached) && now - cached.At < settings.ProbeCacheDuration)
            {
                return cached.Result;
            }
        }
        BackendProbeResult result;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.ProbeTimeout);
        try
        {
            result = await probe.ProbeAsync(timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            result = BackendProbeResult.Down($"no answer within {settings.ProbeTimeout.TotalMilliseconds:0} ms");
        }
#pragma warning disable CA1031 // a probe that throws is a failed probe; the exception's message is not shown (it may quote backend data)
        catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
        {
            result = BackendProbeResult.Down($"probe failed ({ex.GetType().Name})");
        }
        lock (_gate)
        {
            var changed = !_cached.TryGetValue(mounted.Mount.Prefix, out var previous) || previous.Result.Healthy != result.Healthy;
            _cached[mounted.Mount.Prefix] = (result, now);
            if (changed)
            {
                LogProbeChanged(mounted.Mount.Prefix, mounted.Mount.Type, result.Healthy ? "up" : "down", result.Description);
            }
        }
        return result;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backend of mount {Mount} ({MountType}) is {State}: {Description}")]
    private partial void LogProbeChanged(string mount, string mountType, string state, string description);
}
