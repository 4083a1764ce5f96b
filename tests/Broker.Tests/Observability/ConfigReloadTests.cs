using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// A broken edit of a watched file keeps the previous contents; the broker process shows it in readiness
/// (degraded, naming the file, not its contents) and in metrics until a good edit is loaded.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ConfigReloadTests
{
    private const string Policy = """
        policies:
          - name: dev
            appliesTo: { subjects: [dev-user] }
            rules:
              - paths: ["demo/**"]
                capabilities: [read, list]
        """;

    private const string Secrets = """
        secrets:
          app/db:
            data:
              password: FAKE-reload-password
        """;

    [Theory]
    [InlineData("policy", "policies.yaml", "policy file")]
    [InlineData("secrets", "secrets.yaml", "secrets file of mount 'demo'")]
    public async Task A_broken_edit_degrades_readiness_and_counts_until_the_file_is_fixed(string kind, string file, string description)
    {
        using var directory = new TestDirectory();
        directory.WriteFile("policies.yaml", Policy);
        directory.WriteFile("secrets.yaml", Secrets);
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", directory.Path, "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0",
             "--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=secrets.yaml",
             "--Broker:Policy:File=policies.yaml",
             $"--Broker:Audit:Key={BrokerHost.TestAuditKey}",
             "--Broker:Auth:DevTokens:Tokens:0:Subject=dev-user",
             "--Broker:Auth:DevTokens:Tokens:0:Sha256=eae2d3c0b8456e0ec8be3f44bad9f8acfb4afb5a4c962b007e660e128f2d398d"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        await broker.WaitForListeningAddressAsync();
        var management = await broker.WaitForListeningAddressAsync("Management server listening on");
        using var http = new HttpClient();
        async Task<(double Failures, double Healthy)> ReadMetricsAsync()
        {
            var samples = ManagementPort.Parse(await http.GetStringAsync(new Uri(management, "/metrics")));
            var healthy = samples.Where(s => s.Name == "secretsbroker_config_reload_healthy" && s.Has("file", kind)).Select(s => s.Value).DefaultIfEmpty(double.NaN).Single();
            return (samples.Sum("secretsbroker_config_reload_failures_total", ("file", kind)), healthy);
        }
        async Task<(int Status, string Body)> ReadyAsync()
        {
            using var response = await http.GetAsync(new Uri(management, "/healthz/ready"));
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var before = await ReadyAsync();
        Assert.StartsWith("Healthy", before.Body, StringComparison.Ordinal);
        var series = ManagementPort.Parse(await http.GetStringAsync(new Uri(management, "/metrics")));
        Assert.Contains(series, s => s.Name == "secretsbroker_config_reload_failures_total" && s.Has("file", kind) && s.Value == 0);
        Assert.Equal((0, 1), await ReadMetricsAsync());

        // A broken edit: YAML that does not parse, with an obviously fake value that must not show anywhere.
        await File.WriteAllTextAsync(Path.Combine(directory.Path, file), "secrets: [FAKE-broken-edit-value\n  : : :\n");
        (int Status, string Body) degraded = default;
        await Eventually.WaitUntilAsync(async () => (degraded = await ReadyAsync()).Body.StartsWith("Degraded", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "readiness to report the failed reload");
        Assert.Equal(200, degraded.Status);
        Assert.Contains(description, degraded.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("FAKE-broken-edit-value", degraded.Body, StringComparison.Ordinal);
        await Eventually.WaitUntilAsync(async () => await ReadMetricsAsync() is { Failures: >= 1, Healthy: 0 },
            TimeSpan.FromSeconds(30), "the failure counter and the health gauge");

        // Fixed: loaded again, healthy again; the counter keeps its count.
        await File.WriteAllTextAsync(Path.Combine(directory.Path, file), kind == "policy" ? Policy : Secrets);
        await Eventually.WaitUntilAsync(async () => (await ReadyAsync()).Body.StartsWith("Healthy", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "readiness to be healthy after the fix");
        await Eventually.WaitUntilAsync(async () => await ReadMetricsAsync() is { Failures: >= 1, Healthy: 1 },
            TimeSpan.FromSeconds(30), "the health gauge back at 1, the failure still counted");
        Assert.DoesNotContain(broker.Output, line => line.Contains("FAKE-broken-edit-value", StringComparison.Ordinal));
    }
}
