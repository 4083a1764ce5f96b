using System.Net;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>The broker's /metrics on the management port: what is counted, with which labels, and where it is served.</summary>
[Trait("Category", "Integration")]
public sealed class MetricsTests
{
    private static readonly Dictionary<string, string> Db = new() { ["username"] = "FAKE-metrics-user", ["password"] = "FAKE-metrics-password-7" };

    private static Dictionary<string, string?> MemoryMount(string prefix = "mem") => new()
    {
        ["Broker:Mounts:0:Prefix"] = prefix,
        ["Broker:Mounts:0:Type"] = "memory",
    };

    [Fact]
    public async Task Grpc_calls_are_counted_by_method_and_status()
    {
        var memory = new InMemoryBackend();
        memory.Put("teams/alpha/db", "3", Db);
        await using var host = await BrokerHost.StartAsync(MemoryMount(), configureServices: memory.Register);
        var client = host.CreateClient();
        var before = ManagementPort.Parse(await host.ScrapeAsync());

        await client.GetSecretAsync("mem/teams/alpha/db");
        await client.GetSecretAsync("mem/teams/alpha/db");
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("mem/teams/alpha/nothing-here"));
        await Assert.ThrowsAsync<RpcException>(() => host.CreateClient(token: null).GetSecretAsync("mem/teams/alpha/db"));

        const string requests = "secretsbroker_grpc_server_requests_total";
        const string duration = "secretsbroker_grpc_server_duration_seconds_count";
        (string, string) method = ("grpc_method", "GetSecret");
        (string, string) service = ("grpc_service", "secretsbroker.v1.SecretsBroker");
        await Eventually.WaitUntilAsync(async () =>
        {
            var after = ManagementPort.Parse(await host.ScrapeAsync());
            return after.Sum(requests, service, method, ("grpc_status", "OK")) - before.Sum(requests, service, method, ("grpc_status", "OK")) == 2
                && after.Sum(requests, method, ("grpc_status", "NOT_FOUND")) - before.Sum(requests, method, ("grpc_status", "NOT_FOUND")) == 1
                && after.Sum(requests, method, ("grpc_status", "UNAUTHENTICATED")) - before.Sum(requests, method, ("grpc_status", "UNAUTHENTICATED")) == 1
                && after.Sum(duration, method, ("grpc_status", "OK")) - before.Sum(duration, method, ("grpc_status", "OK")) == 2;
        }, TimeSpan.FromSeconds(30), "GetSecret counted twice OK, once NOT_FOUND, once UNAUTHENTICATED, with latencies");
    }

    [Fact]
    public async Task Backend_calls_are_counted_by_mount_type_operation_and_outcome()
    {
        var memory = new InMemoryBackend();
        memory.Put("teams/alpha/db", "3", Db);
        var settings = MemoryMount("backend-metrics");
        settings["Broker:Mounts:0:Cache:Enabled"] = "false";
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var client = host.CreateClient();

        await client.GetSecretAsync("backend-metrics/teams/alpha/db");
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("backend-metrics/teams/alpha/missing"));
        memory.Down = true;
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("backend-metrics/teams/alpha/db"));
        await client.ListSecretsPageAsync("backend-metrics");

        const string calls = "secretsbroker_backend_calls_total";
        (string, string) mount = ("mount", "backend-metrics");
        (string, string) type = ("mount_type", "memory");
        await Eventually.WaitUntilAsync(async () =>
        {
            var samples = ManagementPort.Parse(await host.ScrapeAsync());
            return samples.Sum(calls, mount, type, ("operation", "get"), ("outcome", "ok")) == 1
                && samples.Sum(calls, mount, type, ("operation", "get"), ("outcome", "not_found")) == 1
                && samples.Sum(calls, mount, type, ("operation", "get"), ("outcome", "unavailable")) == 1
                && samples.Sum(calls, mount, type, ("operation", "list"), ("outcome", "ok")) == 1
                && samples.Sum("secretsbroker_backend_duration_seconds_count", mount, ("operation", "get")) == 3;
        }, TimeSpan.FromSeconds(30), "backend calls by outcome and their latencies");
    }

    [Fact]
    public async Task Metrics_never_carry_paths_secret_names_values_or_callers()
    {
        var memory = new InMemoryBackend();
        memory.Put("teams/zebracorn/db-credentials", "11", Db);
        memory.Put("projects/quokkaline/api-key", "12", new Dictionary<string, string> { ["key"] = "FAKE-metrics-api-key-9" });
        await using var host = await BrokerHost.StartAsync(MemoryMount("vaultish"), configureServices: memory.Register);
        var client = host.CreateClient();

        await client.GetSecretAsync("vaultish/teams/zebracorn/db-credentials");
        await client.GetSecretAsync("vaultish/teams/zebracorn/db-credentials", version: "11");
        await client.BatchGetSecretsAsync(["vaultish/projects/quokkaline/api-key", "vaultish/teams/zebracorn/db-credentials", "vaultish/nope/wombatrix"]);
        await client.ListSecretsPageAsync("vaultish/teams");
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vaultish/nope/wombatrix"));
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("unmounted/platypusine/secret"));
        await Assert.ThrowsAsync<RpcException>(() => host.CreateClient(token: "FAKE-not-a-token-narwhalish").GetSecretAsync("vaultish/teams/zebracorn/db-credentials"));

        string[] forbidden =
        [
            "zebracorn", "quokkaline", "wombatrix", "platypusine", "narwhalish", "db-credentials", "api-key", "teams/", "projects/",
            "FAKE-metrics-user", "FAKE-metrics-password-7", "FAKE-metrics-api-key-9", "test-alpha", BrokerHost.TestToken,
        ];
        string text = "";
        await Eventually.WaitUntilAsync(async () =>
        {
            text = await host.ScrapeAsync();
            return ManagementPort.Parse(text).Sum("secretsbroker_grpc_server_requests_total", ("grpc_service", "secretsbroker.v1.SecretsBroker")) >= 7;
        }, TimeSpan.FromSeconds(30), "the calls to be counted");
        foreach (var word in forbidden)
        {
            Assert.DoesNotContain(word, text, StringComparison.OrdinalIgnoreCase);
        }
        // The mount prefix is configuration and may appear; it is what operators aggregate by.
        Assert.Contains("mount=\"vaultish\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Runtime_kestrel_and_cache_meters_are_exported()
    {
        var memory = new InMemoryBackend();
        memory.Put("a", "1", Db);
        await using var host = await BrokerHost.StartAsync(MemoryMount(), configureServices: memory.Register);
        await host.CreateClient().GetSecretAsync("mem/a");
        await host.CreateClient().GetSecretAsync("mem/a");

        await Eventually.WaitUntilAsync(async () =>
        {
            var samples = ManagementPort.Parse(await host.ScrapeAsync());
            return samples.Any(s => s.Name.StartsWith("dotnet_gc_", StringComparison.Ordinal) || s.Name.StartsWith("process_runtime_dotnet_", StringComparison.Ordinal))
                && samples.Any(s => s.Name.StartsWith("kestrel_", StringComparison.Ordinal))
                && !samples.Any(s => s.Name.StartsWith("http_server_request_duration_seconds", StringComparison.Ordinal))
                && samples.Any(s => s.Name.StartsWith("secretsbroker_cache_reads", StringComparison.Ordinal) && s.Has("mount", "mem"));
        }, TimeSpan.FromSeconds(30), "runtime, Kestrel and cache metrics, without the per-request ASP.NET Core duplicates");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Every_broker_metric_the_alerts_and_the_dashboard_use_is_exported()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        var memory = new InMemoryBackend();
        memory.Put("a", "1", Db);
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/a");
        await client.GetSecretAsync("mem/a");

        // Metrics of components that export them elsewhere or only once something happens.
        string[] notFromThisBroker =
        [
            "secretsbroker_audit_consumer_lag", "secretsbroker_audit_consumer_pending",    // the audit service
            "secretsbroker_audit_events_unauthenticated_total",                           // the audit service
            "secretsbroker_audit_stream_length", "secretsbroker_audit_events_ingested_total", // the audit service
            "secretsbroker_audit_redis_persistence",                                      // strict audit over Redis only (RedisPersistenceCheckTests)
            "secretsbroker_lease_active", "secretsbroker_lease_renewals_total",          // mounts that issue leases only
            "secretsbroker_rotations_total",                                              // brokers with rotation rules only (per rule's mount and strategy)
            "secretsbroker_rotation_last_success_seconds",                                // after a mount's first successful rotation (RotateSecretTests)
        ];
        var used = new HashSet<string>(StringComparer.Ordinal);
        var sources = new List<string> { await File.ReadAllTextAsync(OpsTools.DeployPath("prometheus", "alerts.yml")) };
        using (var dashboard = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(OpsTools.DeployPath("grafana", "dashboards", "secretsbroker.json"))))
        {
            sources.AddRange(DeployFilesTests.DashboardExpressions(dashboard));
        }
        foreach (var source in sources)
        {
            foreach (System.Text.RegularExpressions.Match name in System.Text.RegularExpressions.Regex.Matches(source, "\\b(secretsbroker|dotnet|kestrel)_[a-z_]+\\b"))
            {
                used.Add(name.Value);
            }
        }
        Assert.True(used.Count >= 10, string.Join(", ", used));
        IReadOnlyList<MetricSample> samples = [];
        await Eventually.WaitUntilAsync(async () =>
        {
            samples = ManagementPort.Parse(await host.ScrapeAsync());
            return samples.Any(s => s.Name == "secretsbroker_audit_events_total");
        }, TimeSpan.FromSeconds(30), "the audit events to be counted");
        var exported = samples.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var missing = used.Except(notFromThisBroker)
            .Where(name => !exported.Contains(name) && !exported.Contains(name + "_bucket") && !exported.Contains(name.Replace("_bucket", "", StringComparison.Ordinal) + "_bucket"))
            .ToArray();
        Assert.True(missing.Length == 0, "used by alerts.yml or the dashboard but not exported: " + string.Join(", ", missing));
        Assert.Contains(samples, s => s.Name == "secretsbroker_cache_reads_total" && s.Has("source", "L1") && s.Has("stale", "false"));
    }

    [Fact]
    public async Task Metrics_are_served_on_the_management_port_only()
    {
        var memory = new InMemoryBackend();
        await using var host = await BrokerHost.StartAsync(MemoryMount(), configureServices: memory.Register);
        Assert.NotEqual(host.Address.Port, host.ManagementAddress().Port);

        using var http2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var onGrpcPort = await http2.GetAsync(new Uri(host.Address, "/metrics"));
        Assert.Equal(HttpStatusCode.NotFound, onGrpcPort.StatusCode);

        using var http11 = new HttpClient();
        using var onManagementPort = await http11.GetAsync(new Uri(host.ManagementAddress(), "/metrics"));
        Assert.Equal(HttpStatusCode.OK, onManagementPort.StatusCode);
        Assert.Equal(new Version(1, 1), onManagementPort.Version);
        Assert.StartsWith("text/plain", onManagementPort.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_taken_management_port_is_reported_and_the_broker_still_serves()
    {
        using var squatter = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var memory = new InMemoryBackend();
        memory.Put("a", "1", Db);
        var settings = MemoryMount();
        settings["Broker:Management:Urls"] = $"http://127.0.0.1:{port}";
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);

        Assert.Equal("1", (await host.CreateClient().GetSecretAsync("mem/a")).Version);
        Assert.Contains(host.Logs.Lines, line => line.StartsWith("Error", StringComparison.Ordinal) && line.Contains("Management server could not listen", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Empty_management_urls_turn_the_management_server_off()
    {
        var settings = MemoryMount();
        settings["Broker:Management:Urls"] = "";
        var memory = new InMemoryBackend();
        memory.Put("a", "1", Db);
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);

        Assert.Empty(host.Services.GetRequiredService<SecretsBroker.Broker.Observability.ManagementServer>().Addresses);
        Assert.Contains(host.Logs.Lines, line => line.Contains("Management server is off", StringComparison.Ordinal));
        Assert.Equal("1", (await host.CreateClient().GetSecretAsync("mem/a")).Version);
    }

    [Fact]
    public async Task A_management_url_that_is_not_http_stops_the_broker_at_start()
    {
        var settings = MemoryMount();
        settings["Broker:Management:Urls"] = "https://127.0.0.1:0";
        var memory = new InMemoryBackend();
        var failure = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => BrokerHost.StartAsync(settings, configureServices: memory.Register));
        Assert.Contains("Broker:Management:Urls", failure.Message, StringComparison.Ordinal);
    }
}
