using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// Alerts built on <c>increase()</c> see a failure only when the counter existed before it: a series born at its
/// first failure reads as "no growth". So every counter an alert watches is exported with its known label values
/// at zero from start, and what the broker exports passes promtool's metric linter.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SeriesFromStartTests
{
    [Fact]
    public async Task Every_counter_an_alert_watches_is_exported_at_zero_right_after_start()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis));

        // No call made: what is in /metrics now is what the broker exports from start.
        var samples = ManagementPort.Parse(await broker.ScrapeAsync());
        string[] missing =
        [
            .. new[] { "recorded", "spooled", "replayed", "failed" }
                .Where(o => !AtZero(samples, "secretsbroker_audit_events_total", ("outcome", o)))
                .Select(o => $"secretsbroker_audit_events_total{{outcome=\"{o}\"}}"),
            .. new[] { "Malformed", "UnknownKey", "AuthenticationFailed" }
                .Where(r => !AtZero(samples, "secretsbroker_cache_rejected_entries_total", ("reason", r)))
                .Select(r => $"secretsbroker_cache_rejected_entries_total{{reason=\"{r}\"}}"),
            .. new[] { "renewed", "failed" }
                .Where(o => !AtZero(samples, "secretsbroker_lease_renewals_total", ("mount", "db"), ("outcome", o)))
                .Select(o => $"secretsbroker_lease_renewals_total{{mount=\"db\",outcome=\"{o}\"}}"),
            .. new[] { "ok", "refused", "failed" }
                .Where(o => !AtZero(samples, "secretsbroker_vault_logins_total", ("connection", "default"), ("outcome", o)))
                .Select(o => $"secretsbroker_vault_logins_total{{connection=\"default\",outcome=\"{o}\"}}"),
            .. new[] { "policy", "secrets" }
                .Where(f => !AtZero(samples, "secretsbroker_config_reload_failures_total", ("file", f)))
                .Select(f => $"secretsbroker_config_reload_failures_total{{file=\"{f}\"}}"),
            .. new[] { "vault", "db" }
                .Where(m => !AtZero(samples, "secretsbroker_backend_calls_total", ("mount", m), ("outcome", "unavailable")))
                .Select(m => $"secretsbroker_backend_calls_total{{mount=\"{m}\",outcome=\"unavailable\"}}"),
        ];
        Assert.True(missing.Length == 0, "not exported at zero from start: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task Promtool_finds_no_problem_in_the_metrics_of_a_broker_renewing_leases()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        var client = broker.CreateClient().Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Renewed).Any(), TimeSpan.FromSeconds(30), "a renewal");

        var metrics = "";
        await Eventually.WaitUntilAsync(async () => (metrics = await broker.ScrapeAsync()).Contains("secretsbroker_lease_renewal_lateness", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the renewal lateness histogram in /metrics");
        // Prometheus' convention: durations in seconds, the unit as the name's suffix.
        Assert.Contains("secretsbroker_lease_renewal_lateness_seconds_bucket{", metrics, StringComparison.Ordinal);

        var (exitCode, output) = await OpsTools.RunAsync(OpsTools.Promtool, ["check", "metrics"], input: metrics);
        var findings = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.DoesNotContain(findings, f => f.StartsWith("secretsbroker_", StringComparison.Ordinal));
        // Exit code 3 means lint findings only (the runtime's own names, see PrometheusScrapeTests); 1 is a parse error.
        Assert.True(exitCode is 0 or 3, $"promtool check metrics exited {exitCode}:\n{output}");
    }

    private static bool AtZero(IReadOnlyList<MetricSample> samples, string name, params (string Label, string Value)[] labels)
    {
        var matching = samples.Where(s => s.Name == name && labels.All(l => s.Has(l.Label, l.Value))).ToArray();
        return matching.Length > 0 && matching.All(s => s.Value == 0);
    }
}
