using System.Globalization;
using System.Text.Json;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// A real Prometheus (Debian's) scraping a running broker with the repository's own scrape config
/// (deploy/prometheus/prometheus.yml, its targets pointed at the test's ports), and promtool reading
/// the broker's /metrics.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PrometheusScrapeTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Names promtool's linter flags in the .NET runtime's own instruments (OpenTelemetry semantic
    /// conventions: dotnet.assembly.count and the like end in "count" without being histograms). The
    /// broker keeps the conventional names so standard .NET dashboards work; its own metrics must be clean.
    /// </summary>
    private static readonly string[] RuntimeNamesPromtoolLintsOn = ["dotnet_assembly_count", "dotnet_process_cpu_count", "dotnet_timer_count"];

    [Fact]
    public async Task Prometheus_scrapes_the_broker_with_the_repository_config_and_sees_the_request_counter_grow()
    {
        var memory = new InMemoryBackend();
        memory.Put("teams/alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-prometheus-password" });
        await using var host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "mem",
            ["Broker:Mounts:0:Type"] = "memory",
        }, configureServices: memory.Register);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/teams/alpha/db");

        await using var prometheus = await PrometheusProcess.StartAsync(host.ManagementAddress().Port);
        await Eventually.WaitUntilAsync(async () => await prometheus.QueryScalarAsync("""up{job="secretsbroker-broker"}""") == 1,
            TimeSpan.FromSeconds(60), "Prometheus to scrape the broker (up == 1)");

        const string query = """sum(secretsbroker_grpc_server_requests_total{job="secretsbroker-broker", grpc_method="GetSecret", grpc_status="OK"})""";
        double before = 0;
        await Eventually.WaitUntilAsync(async () => (before = await prometheus.QueryScalarAsync(query) ?? 0) >= 1,
            TimeSpan.FromSeconds(60), "the first GetSecret to be scraped");

        for (var i = 0; i < 3; i++)
        {
            await client.GetSecretAsync("mem/teams/alpha/db");
        }
        await Eventually.WaitUntilAsync(async () => await prometheus.QueryScalarAsync(query) >= before + 3,
            TimeSpan.FromSeconds(60), "the request counter in Prometheus to grow by the three calls");

        // The same Prometheus loaded the alert rules and evaluates them without errors.
        await Eventually.WaitUntilAsync(async () =>
        {
            using var rules = await prometheus.GetAsync("/api/v1/rules");
            var all = rules.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray()
                .SelectMany(g => g.GetProperty("rules").EnumerateArray()).ToArray();
            Assert.All(all, r => Assert.NotEqual("err", r.GetProperty("health").GetString()));
            return all.Length >= 10 && all.All(r => r.GetProperty("health").GetString() == "ok");
        }, TimeSpan.FromSeconds(60), "every alert rule to be loaded and evaluated");

        // Every dashboard query is valid PromQL for this Prometheus, and the broker panels find data.
        using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(OpsTools.DeployPath("grafana", "dashboards", "secretsbroker.json")));
        foreach (var expression in DeployFilesTests.DashboardExpressions(dashboard))
        {
            var promql = expression.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$job", "secretsbroker-broker", StringComparison.Ordinal)
                .Replace("$instance", ".*", StringComparison.Ordinal);
            using var answer = await prometheus.GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(promql));
            Assert.Equal("success", answer.RootElement.GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task Prometheus_scrapes_the_broker_and_the_audit_service_and_sees_audited_reads_ingested()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("teams/alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-prometheus-mesh-password" });
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        await using var broker = await BrokerHost.StartAsync(settings, configureServices: memory.Register);

        using var store = new TestDirectory();
        var auditDll = RepositoryLayout.BuildOutput("services/Audit/Service", "SecretsBroker.Audit.dll");
        await using var audit = ExternalProcess.Start(RepositoryLayout.DotNet,
            [
                auditDll, "--contentRoot", Path.GetDirectoryName(auditDll)!,
                "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:0",
                "--Kestrel:Endpoints:Metrics:Url=http://127.0.0.1:0",
                $"--Audit:Key={BrokerHost.TestAuditKey}",
                $"--Audit:Ingestion:Redis={redis.ConnectionString}",
                "--Audit:Ingestion:PollInterval=00:00:00.050",
                "--Audit:Ingestion:LagInterval=00:00:00.200",
                $"--Audit:Store:Path={Path.Combine(store.Path, "audit.db")}",
                "--Audit:Auth:Tokens:0:Name=prometheus-test",
                $"--Audit:Auth:Tokens:0:Sha256={new string('a', 64)}",
            ], new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        var auditMetricsPort = (await audit.WaitForTwoEndpointsAsync("/metrics")).Http1.Port;

        await using var prometheus = await PrometheusProcess.StartAsync(broker.ManagementAddress().Port, auditMetricsPort);
        await Eventually.WaitUntilAsync(async () => await prometheus.QueryScalarAsync("""sum(up{job=~"secretsbroker-broker|secretsbroker-audit"})""") == 2,
            TimeSpan.FromSeconds(60), "Prometheus to scrape both the broker and the audit service");

        var client = broker.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            await client.GetSecretAsync("mem/teams/alpha/db");
        }
        await Eventually.WaitUntilAsync(async () =>
                await prometheus.QueryScalarAsync("""sum(secretsbroker_audit_events_total{job="secretsbroker-broker", outcome="recorded"})""") >= 3
                && await prometheus.QueryScalarAsync("""sum(secretsbroker_audit_events_ingested_total{job="secretsbroker-audit"})""") >= 3,
            TimeSpan.FromSeconds(60), "the three reads recorded by the broker and ingested by the audit service, as Prometheus sees them");
        await Eventually.WaitUntilAsync(async () => await prometheus.QueryScalarAsync("""max(secretsbroker_audit_consumer_lag{job="secretsbroker-audit"})""") == 0,
            TimeSpan.FromSeconds(60), "the audit consumer lag the SecretsBrokerAuditLag alert watches to be scraped and back at zero");
    }

    [Fact]
    public async Task A_tool_whose_free_port_was_taken_meanwhile_is_started_again_on_another()
    {
        using var squatter = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var taken = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port;
        using var directory = new TestDirectory();
        var config = directory.WriteFile("prometheus.yml", "global:\n  scrape_interval: 15s\n");
        var attempts = 0;
        var (process, ports) = await OpsTools.StartOnFreePortsAsync(1, ports =>
            {
                var port = attempts++ == 0 ? taken : ports[0];
                return ExternalProcess.Start(OpsTools.Prometheus,
                    [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(directory.Path, $"data{attempts}")}", $"--web.listen-address=127.0.0.1:{port}"]);
            },
            async (_, ports) =>
            {
                try
                {
                    using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{ports[0]}/-/ready"));
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            "prometheus");
        await using var _ = process;
        Assert.Equal(2, attempts);
        Assert.NotEqual(taken, ports[0]);
    }

    [Fact]
    public async Task Promtool_finds_no_problem_in_the_broker_metrics()
    {
        var memory = new InMemoryBackend();
        memory.Put("a", "1", new Dictionary<string, string> { ["k"] = "FAKE-promtool-value" });
        await using var host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "mem",
            ["Broker:Mounts:0:Type"] = "memory",
        }, configureServices: memory.Register);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/a");
        await client.GetSecretAsync("mem/a");
        await client.ListSecretsPageAsync("mem");
        await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => client.GetSecretAsync("mem/b"));

        string metrics = "";
        await Eventually.WaitUntilAsync(async () =>
        {
            metrics = await host.ScrapeAsync();
            return metrics.Contains("secretsbroker_backend_duration_seconds_bucket", StringComparison.Ordinal)
                && metrics.Contains("secretsbroker_cache_reads_total", StringComparison.Ordinal)
                && metrics.Contains("secretsbroker_grpc_server_duration_seconds_bucket", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), "broker, backend and cache metrics in /metrics");

        var (exitCode, output) = await OpsTools.RunAsync(OpsTools.Promtool, ["check", "metrics"], input: metrics);
        // Exit code 3 means lint findings only; parse errors are exit code 1.
        var findings = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(exitCode == 0 || (exitCode == 3 && findings.All(f => RuntimeNamesPromtoolLintsOn.Any(n => f.StartsWith(n + " ", StringComparison.Ordinal)))),
            $"promtool check metrics exited {exitCode}:\n{output}");
        Assert.DoesNotContain(findings, f => f.StartsWith("secretsbroker_", StringComparison.Ordinal));
    }

    /// <summary>Debian's prometheus on a free loopback port with the repository's config, templated for the test.</summary>
    private sealed class PrometheusProcess : IAsyncDisposable
    {
        private readonly ExternalProcess _process;
        private readonly TestDirectory _directory;
        private ReservedPort? _closed;

        private PrometheusProcess(ExternalProcess process, TestDirectory directory, Uri address)
        {
            _process = process;
            _directory = directory;
            Address = address;
        }

        public Uri Address { get; }

        public static async Task<PrometheusProcess> StartAsync(int brokerManagementPort, int? auditMetricsPort = null)
        {
            var directory = new TestDirectory();
            var closed = auditMetricsPort is null ? FreePort.Reserve() : null;
            var template = await File.ReadAllTextAsync(OpsTools.DeployPath("prometheus", "prometheus.yml"));
            directory.WriteFile("alerts.yml", await File.ReadAllTextAsync(OpsTools.DeployPath("prometheus", "alerts.yml")));
            var (process, ports) = await OpsTools.StartOnFreePortsAsync(1, ports =>
                {
                    var port = ports[0];
                    var config = Replace(template, "\"broker:9464\"", $"\"127.0.0.1:{brokerManagementPort}\"");
                    // Without an audit service its target points at a reserved port where nothing listens, and is simply down.
                    config = Replace(config, "\"audit:9161\"", $"\"127.0.0.1:{auditMetricsPort ?? closed!.Port}\"");
                    config = Replace(config, "\"localhost:9090\"", $"\"127.0.0.1:{port}\"");
                    config = Replace(config, "scrape_interval: 15s", "scrape_interval: 1s");
                    config = Replace(config, "scrape_timeout: 10s", "scrape_timeout: 1s");
                    config = Replace(config, "evaluation_interval: 15s", "evaluation_interval: 1s");
                    var configFile = directory.WriteFile("prometheus.yml", config);
                    var data = Path.Combine(directory.Path, "data");
                    if (Directory.Exists(data))
                    {
                        Directory.Delete(data, recursive: true);
                    }
                    Directory.CreateDirectory(data);
                    return ExternalProcess.Start(OpsTools.Prometheus,
                    [
                        $"--config.file={configFile}",
                        $"--storage.tsdb.path={data}",
                        $"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ], workingDirectory: directory.Path);
                },
                async (_, ports) =>
                {
                    try
                    {
                        using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{ports[0]}/-/ready"));
                        return response.IsSuccessStatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                "prometheus");
            return new PrometheusProcess(process, directory, new Uri($"http://127.0.0.1:{ports[0]}")) { _closed = closed };
        }

        public async Task<JsonDocument> GetAsync(string pathAndQuery)
        {
            using var response = await Http.GetAsync(new Uri(Address, pathAndQuery));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"GET {pathAndQuery}: {(int)response.StatusCode} {body}");
            return JsonDocument.Parse(body);
        }

        /// <summary>The value of an instant query with at most one result, or null when it has none.</summary>
        public async Task<double?> QueryScalarAsync(string promql)
        {
            using var answer = await GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(promql));
            var results = answer.RootElement.GetProperty("data").GetProperty("result");
            return results.GetArrayLength() == 0
                ? null
                : double.Parse(results[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
        }

        public async ValueTask DisposeAsync()
        {
            await _process.DisposeAsync();
            _directory.Dispose();
            _closed?.Dispose();
        }

        private static string Replace(string text, string from, string to)
        {
            Assert.True(text.Contains(from, StringComparison.Ordinal), $"deploy/prometheus/prometheus.yml no longer contains {from}; update the test's templating");
            return text.Replace(from, to, StringComparison.Ordinal);
        }
    }
}
