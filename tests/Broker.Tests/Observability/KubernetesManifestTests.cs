using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SecretsBroker.Broker.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// deploy/kubernetes as <c>kubectl kustomize</c> renders it (Debian's kubectl, offline): every file the broker's
/// configuration names is mounted from a volume, the audit spool is on a PersistentVolumeClaim, and the broker starts
/// with that configuration and those files in place, serving gRPC over TLS.
/// </summary>
[Trait("Category", "Integration")]
public sealed class KubernetesManifestTests
{
    /// <summary>Paths Kubernetes itself provides (automountServiceAccountToken), not a volume of the manifests.</summary>
    private const string ServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>The image's working directory (deploy/docker/broker.Dockerfile): the content root.</summary>
    private const string ContentRoot = "/app";

    [SkippableFact]
    public async Task Every_file_the_rendered_broker_configuration_names_is_mounted_and_the_spool_is_persistent()
    {
        var rendered = await RenderedManifests.RenderAsync();
        var broker = rendered.BrokerPod();
        var settings = rendered.BrokerSettings(broker);
        var paths = settings.Where(s => s.Value.StartsWith('/')).ToArray();
        Assert.True(paths.Length >= 4, "expected at least the Vault CA, JWT, policy and spool paths, found: " + string.Join(", ", paths.Select(p => p.Key)));
        foreach (var (key, path) in paths)
        {
            var mount = broker.MountOf(path);
            Assert.True(mount is not null || (path.StartsWith(ServiceAccountDirectory + "/", StringComparison.Ordinal) && broker.AutomountsServiceAccountToken),
                $"{key} names {path}, which no volume of the broker's pod mounts");
            if (mount is { Volume: var volume } && volume.Children.TryGetValue("configMap", out var configMap))
            {
                // A file from a ConfigMap must be one of the keys it projects.
                var file = mount.SubPath ?? Path.GetRelativePath(mount.MountPath, path);
                var items = ((YamlMappingNode)configMap).Children.TryGetValue("items", out var list)
                    ? ((YamlSequenceNode)list).Children.Cast<YamlMappingNode>().Select(i => ((YamlScalarNode)i["path"]).Value!).ToArray()
                    : rendered.ConfigMapKeys(((YamlScalarNode)configMap["name"]).Value!);
                Assert.True(items is null || items.Contains(file), $"{key} names {path}, but the ConfigMap volume {mount.Name} has no {file}");
            }
        }

        var spool = settings["Broker:Audit:SpoolDirectory"];
        var spoolMount = broker.MountOf(spool);
        Assert.NotNull(spoolMount);
        Assert.True(broker.ClaimTemplates.Contains(spoolMount.Name) || spoolMount.Volume.Children.ContainsKey("persistentVolumeClaim"),
            $"the audit spool {spool} is on volume {spoolMount.Name}, which is not a PersistentVolumeClaim: spooled events would be lost with the pod");

        // The audit service's gRPC health includes Redis: a start-up probe on it kills pods started during a Redis outage.
        var audit = rendered.Workload("StatefulSet", "secretsbroker-audit").Container;
        var startup = (YamlMappingNode)audit["startupProbe"];
        var liveness = (YamlMappingNode)audit["livenessProbe"];
        Assert.False(startup.Children.ContainsKey("grpc"), "the audit service's startupProbe must not use its gRPC health (it answers NOT_SERVING while Redis is down)");
        Assert.Equal(liveness.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value).Intersect(["grpc", "tcpSocket", "httpGet", "exec"]),
            startup.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value).Intersect(["grpc", "tcpSocket", "httpGet", "exec"]));
    }

    [SkippableFact]
    public async Task The_broker_starts_with_the_rendered_configuration_and_its_mounted_files_and_serves_tls()
    {
        var rendered = await RenderedManifests.RenderAsync();
        var broker = rendered.BrokerPod();
        using var root = new TestDirectory();
        using var pki = new TestPki();
        using var server = pki.IssueServer();
        // What the volumes hold that the manifests do not render: cert-manager's Secret and the Vault CA bundle.
        var provided = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal)
        {
            ["secretsbroker-broker-tls"] = new()
            {
                ["tls.crt"] = server.ExportCertificatePem(),
                ["tls.key"] = server.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem(),
                ["ca.crt"] = pki.AuthorityPem,
            },
            ["secretsbroker-vault-ca"] = new() { ["ca.crt"] = pki.AuthorityPem },
        };
        string Reroot(string path) => root.Path + path;
        foreach (var mount in broker.Mounts)
        {
            var files = mount.Volume.Children.TryGetValue("configMap", out var configMap)
                ? rendered.ConfigMapData(((YamlScalarNode)configMap["name"]).Value!) ?? provided.GetValueOrDefault(((YamlScalarNode)configMap["name"]).Value!)
                : mount.Volume.Children.TryGetValue("secret", out var secret) ? provided.GetValueOrDefault(((YamlScalarNode)secret["secretName"]).Value!)
                : new Dictionary<string, string>(); // emptyDir, PersistentVolumeClaim: empty at start
            Assert.True(files is not null, $"the test does not know what volume {mount.Name} holds");
            if (mount.SubPath is { } subPath)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Reroot(mount.MountPath))!);
                await File.WriteAllTextAsync(Reroot(mount.MountPath), files[subPath]);
                continue;
            }
            Directory.CreateDirectory(Reroot(mount.MountPath));
            foreach (var (name, content) in files)
            {
                await File.WriteAllTextAsync(Path.Combine(Reroot(mount.MountPath), name), content);
            }
        }
        Directory.CreateDirectory(Reroot(ServiceAccountDirectory));
        await File.WriteAllTextAsync(Reroot(ServiceAccountDirectory + "/token"), "FAKE-service-account-jwt");
        // The image's own appsettings.json sits next to the mounted appsettings.Production.json.
        File.Copy(Path.Combine(RepositoryLayout.Root, "services", "Broker", "appsettings.json"), Reroot(ContentRoot + "/appsettings.json"));

        // The rendered configuration, as the container gets it: appsettings.Production.json from the ConfigMap (its
        // paths re-rooted in the test directory), the container's env and the Secret's keys with fake values. Only the
        // listen addresses change, to port 0 on loopback.
        var appsettings = Reroot(ContentRoot + "/appsettings.Production.json");
        var json = JsonNode.Parse(await File.ReadAllTextAsync(appsettings))!;
        RerootPaths(json, root.Path);
        var grpcEndpoint = json["Kestrel"]?["Endpoints"]?["Grpc"];
        Assert.True(grpcEndpoint?["Certificate"] is not null, "the rendered configuration serves no TLS gRPC endpoint (Kestrel:Endpoints:Grpc with a Certificate)");
        grpcEndpoint!["Url"] = "https://127.0.0.1:0";
        await File.WriteAllTextAsync(appsettings, json.ToJsonString());
        var environment = broker.LiteralEnvironment().ToDictionary(e => e.Key, e => (string?)(e.Value.StartsWith('/') ? Reroot(e.Value) : e.Value));
        environment["Broker__Management__Urls"] = "http://127.0.0.1:0";
        environment["POD_NAME"] = "secretsbroker-broker-0";
        foreach (var key in RenderedManifests.ExampleSecretKeys("secretsbroker-broker"))
        {
            environment[key] = key.EndsWith("__Id", StringComparison.Ordinal) ? "test-1"
                : key.EndsWith("__Active", StringComparison.Ordinal) ? "true"
                : BrokerHost.TestAuditKey;
        }

        await using var process = ExternalProcess.Start(RepositoryLayout.DotNet, [RepositoryLayout.BrokerDll, "--contentRoot", Reroot(ContentRoot)], environment);
        var address = await process.WaitForListeningAddressAsync();
        var management = await process.WaitForListeningAddressAsync("Management server listening on");
        Assert.Equal("https", address.Scheme);

        // Ready (Degraded counts: Vault, Redis and AWS of the example are not reachable here, and the example does not
        // require them), with the probe the manifest uses.
        using var http = new HttpClient();
        var probe = broker.Probe("readinessProbe");
        await Eventually.WaitUntilAsync(async () =>
        {
            Assert.False(process.HasExited, "the broker exited; its output:\n" + string.Join('\n', process.Output));
            try
            {
                using var response = await http.GetAsync(new Uri(management, probe));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException ex)
            {
                Assert.Fail($"{management}: {ex.Message}; broker output:\n" + string.Join('\n', process.Output));
                throw;
            }
        }, TimeSpan.FromSeconds(60), $"{probe} to answer 200");

        // gRPC over TLS, the certificate validated against the mounted ca.crt alone.
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is X509Certificate2 presented && ChainsTo(presented, pki.Authority),
            },
        };
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
        var health = new Health.HealthClient(channel);
        HealthCheckResponse status;
        try
        {
            status = await health.CheckAsync(new HealthCheckRequest { Service = "readiness" }, deadline: DateTime.UtcNow.AddSeconds(30));
        }
        catch (RpcException ex)
        {
            Assert.Fail($"gRPC health over TLS at {address} failed: {ex.Status}; broker output:\n{string.Join('\n', process.Output)}");
            throw;
        }
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, status.Status);
        Assert.DoesNotContain(process.Output, line => line.Contains("Unhandled exception", StringComparison.Ordinal));
    }

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 authority)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static void RerootPaths(JsonNode node, string root)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj.ToArray())
                {
                    if (value is JsonValue v && v.TryGetValue<string>(out var text) && text.StartsWith('/'))
                    {
                        obj[key] = root + text;
                    }
                    else if (value is not null)
                    {
                        RerootPaths(value, root);
                    }
                }
                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    if (item is not null)
                    {
                        RerootPaths(item, root);
                    }
                }
                break;
        }
    }
}
