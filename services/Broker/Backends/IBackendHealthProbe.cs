namespace SecretsBroker.Broker.Backends;

/// <summary>The answer of a backend's health probe; <see cref="Description"/> is shown to operators, so it names no secret.</summary>
public sealed record BackendProbeResult(bool Healthy, string Description)
{
    public static BackendProbeResult Up(string description = "reachable") => new(true, description);

    public static BackendProbeResult Down(string description) => new(false, description);
}

/// <summary>
/// A cheap check that a backend can serve (Vault's sys/health, a connection test): no secret is read.
/// Backends that implement it take part in the broker's readiness (see docs/operations.md); the broker
/// bounds each probe with a timeout and reuses the answer for a few seconds.
/// </summary>
public interface IBackendHealthProbe
{
    Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken);
}
