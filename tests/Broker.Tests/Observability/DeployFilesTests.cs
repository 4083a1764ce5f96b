using System.Text.Json;
using System.Text.RegularExpressions;
using SecretsBroker.Broker.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>deploy/ and docker-compose.yml checked by the tools that consume them (promtool, docker-compose) and for structure.</summary>
public sealed partial class DeployFilesTests
{
    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("prometheus.yml")]
    [InlineData("prometheus-kubernetes.yml")]
    public async Task Promtool_accepts_the_prometheus_configuration(string file)
    {
        var (exitCode, output) = await OpsTools.RunAsync(OpsTools.Promtool, ["check", "config", OpsTools.DeployPath("prometheus", file)]);
        Assert.True(exitCode == 0, output);
        Assert.Contains("rule files found", output, StringComparison.Ordinal);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Promtool_accepts_the_alert_rules()
    {
        var (exitCode, output) = await OpsTools.RunAsync(OpsTools.Promtool, ["check", "rules", OpsTools.DeployPath("prometheus", "alerts.yml")]);
        Assert.True(exitCode == 0, output);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task The_alert_rules_fire_as_their_unit_tests_expect()
    {
        var (exitCode, output) = await OpsTools.RunAsync(OpsTools.Promtool, ["test", "rules", "alerts.test.yml"], workingDirectory: OpsTools.DeployPath("prometheus"));
        Assert.True(exitCode == 0, output);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Alerts_cover_audit_lag_spool_backend_errors_lease_renewals_and_cache_decrypt_failures()
    {
        var text = File.ReadAllText(OpsTools.DeployPath("prometheus", "alerts.yml"));
        foreach (var alert in new[]
                 {
                     "SecretsBrokerAuditLag", "SecretsBrokerAuditSpoolGrowing", "SecretsBrokerBackendErrorRate",
                     "SecretsBrokerLeaseRenewalFailures", "SecretsBrokerCacheDecryptFailures", "SecretsBrokerConfigReloadFailed",
                     "SecretsBrokerAuditBacklogCapped",
                 })
        {
            Assert.Contains($"alert: {alert}", text, StringComparison.Ordinal);
        }
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Docker_compose_accepts_the_compose_file()
    {
        var (fileName, prefix) = OpsTools.Compose;
        var (exitCode, output) = await OpsTools.RunAsync(fileName, [.. prefix, "-f", Path.Combine(RepositoryLayout.Root, "docker-compose.yml"), "config"]);
        Assert.True(exitCode == 0, output);
        foreach (var service in new[] { "redis", "vault", "moto", "broker", "audit", "prometheus", "grafana" })
        {
            Assert.Matches(new Regex($"^  {service}:$", RegexOptions.Multiline), output);
        }
    }

    [Fact]
    public void Every_file_the_compose_file_mounts_or_builds_from_exists()
    {
        var compose = LoadYaml(Path.Combine(RepositoryLayout.Root, "docker-compose.yml")).Single();
        var services = (YamlMappingNode)compose["services"];
        var checkedPaths = 0;
        foreach (var (name, node) in services.Children)
        {
            var service = (YamlMappingNode)node;
            if (service.Children.TryGetValue("build", out var build))
            {
                var dockerfile = Path.Combine(RepositoryLayout.Root, ((YamlScalarNode)build["dockerfile"]).Value!);
                Assert.True(File.Exists(dockerfile), $"{name}: {dockerfile} does not exist");
                checkedPaths++;
            }
            if (service.Children.TryGetValue("volumes", out var volumes))
            {
                foreach (var volume in ((YamlSequenceNode)volumes).Children.Cast<YamlScalarNode>())
                {
                    var source = volume.Value!.Split(':')[0];
                    if (source.StartsWith("./", StringComparison.Ordinal))
                    {
                        var path = Path.Combine(RepositoryLayout.Root, source[2..]);
                        Assert.True(File.Exists(path) || Directory.Exists(path), $"{name}: {source} does not exist");
                        checkedPaths++;
                    }
                }
            }
        }
        Assert.True(checkedPaths >= 10, $"only {checkedPaths} paths checked");
        using var _ = JsonDocument.Parse(File.ReadAllText(OpsTools.DeployPath("compose", "broker", "appsettings.Development.json")));
    }

    [Fact]
    public void Dockerfiles_are_multi_stage_and_run_as_a_non_root_user()
    {
        foreach (var file in new[] { "broker.Dockerfile", "audit.Dockerfile" })
        {
            var text = File.ReadAllText(OpsTools.DeployPath("docker", file));
            Assert.Equal(2, Regex.Count(text, "^FROM ", RegexOptions.Multiline));
            Assert.Contains("COPY --from=build", text, StringComparison.Ordinal);
            var user = Regex.Match(text, @"^USER (\d+)", RegexOptions.Multiline);
            Assert.True(user.Success && user.Groups[1].Value != "0", $"{file} must switch to a numeric non-root USER");
            // The projects the images build exist where the Dockerfile expects them.
            foreach (Match copy in Regex.Matches(text, @"^COPY (services/\S+\.csproj) ", RegexOptions.Multiline))
            {
                if (!copy.Groups[1].Value.Contains("Audit/Service", StringComparison.Ordinal) || Directory.Exists(Path.Combine(RepositoryLayout.Root, "services", "Audit", "Service")))
                {
                    Assert.True(File.Exists(Path.Combine(RepositoryLayout.Root, copy.Groups[1].Value)), $"{file}: {copy.Groups[1].Value} does not exist");
                }
            }
        }
    }

    [Fact]
    public void Kubernetes_manifests_have_probes_resources_and_the_required_kinds()
    {
        var documents = Directory.GetFiles(OpsTools.DeployPath("kubernetes"), "*.yaml")
            .Where(f => !f.EndsWith(".example.yaml", StringComparison.Ordinal) && Path.GetFileName(f) != "kustomization.yaml")
            .SelectMany(LoadYaml)
            .ToArray();
        string Kind(YamlMappingNode d) => ((YamlScalarNode)d["kind"]).Value!;
        var kinds = documents.Select(Kind).ToHashSet();
        foreach (var kind in new[] { "StatefulSet", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler" })
        {
            Assert.Contains(kind, kinds);
        }
        foreach (var workload in documents.Where(d => Kind(d) is "Deployment" or "StatefulSet"))
        {
            var pod = (YamlMappingNode)((YamlMappingNode)((YamlMappingNode)workload["spec"])["template"])["spec"];
            foreach (var container in ((YamlSequenceNode)pod["containers"]).Children.Cast<YamlMappingNode>())
            {
                // gRPC health, or the same checks over HTTP on the management port where the gRPC port serves TLS
                // (the kubelet's gRPC probes speak plaintext only); liveness and start-up may just check the port.
                Assert.True(((YamlMappingNode)container["readinessProbe"]).Children.Keys.Cast<YamlScalarNode>().Any(k => k.Value is "grpc" or "httpGet"),
                    "readinessProbe must use the gRPC or HTTP health checks");
                foreach (var probe in new[] { "livenessProbe", "startupProbe" })
                {
                    Assert.True(((YamlMappingNode)container[probe]).Children.Keys.Cast<YamlScalarNode>().Any(k => k.Value is "grpc" or "httpGet" or "tcpSocket"),
                        $"{probe} must be a gRPC health, HTTP health or TCP probe");
                }
                Assert.True(((YamlMappingNode)((YamlMappingNode)container["resources"])["requests"]).Children.ContainsKey("cpu"));
                var security = (YamlMappingNode)container["securityContext"];
                Assert.Equal("true", ((YamlScalarNode)security["readOnlyRootFilesystem"]).Value);
                Assert.Equal("false", ((YamlScalarNode)security["allowPrivilegeEscalation"]).Value);
            }
        }
        var kustomization = File.ReadAllText(OpsTools.DeployPath("kubernetes", "kustomization.yaml"));
        foreach (Match resource in Regex.Matches(kustomization, @"^  - (\S+\.yaml)$", RegexOptions.Multiline))
        {
            Assert.True(File.Exists(OpsTools.DeployPath("kubernetes", resource.Groups[1].Value)), resource.Groups[1].Value);
        }
    }

    [Fact]
    public void The_dashboard_shows_request_rate_latency_cache_hit_ratio_backend_errors_leases_audit_lag_and_rotations()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(OpsTools.DeployPath("grafana", "dashboards", "secretsbroker.json")));
        var expressions = DashboardExpressions(dashboard).ToArray();
        Assert.Contains(expressions, e => e.Contains("rate(secretsbroker_grpc_server_requests_total", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("histogram_quantile(0.5,", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("histogram_quantile(0.99,", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_cache_reads_total", StringComparison.Ordinal) && e.Contains("L1|L2", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_backend_calls_total", StringComparison.Ordinal) && e.Contains("unavailable", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_lease_active", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_audit_consumer_lag", StringComparison.Ordinal));
        // Stream length, spool depth and ingestion rate (issue 21).
        Assert.Contains(expressions, e => e.Contains("secretsbroker_audit_stream_length", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_audit_backlog_capped", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_audit_spool_depth", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("rate(secretsbroker_audit_events_ingested_total", StringComparison.Ordinal));
        // Rotation (issue 19): rotations by outcome, overdue and failing, time since the last success.
        Assert.Contains(expressions, e => e.Contains("secretsbroker_rotations_total", StringComparison.Ordinal) && e.Contains("outcome", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_rotation_overdue", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_rotation_failing", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("secretsbroker_rotation_last_success_seconds", StringComparison.Ordinal));
    }

    public static IEnumerable<string> DashboardExpressions(JsonDocument dashboard) =>
        dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .Select(t => t.GetProperty("expr").GetString()!);

    private static IEnumerable<YamlMappingNode> LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>();
    }
}
