using System.Text;
using SecretsBroker.Broker.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>deploy/kubernetes rendered by <c>kubectl kustomize</c>, with the questions the manifest tests ask of it.</summary>
public sealed class RenderedManifests(IReadOnlyList<YamlMappingNode> documents)
{
    /// <summary>
    /// Renders deploy/kubernetes. Without kubectl the test is skipped, except under CI (CI set), where the
    /// manifests must be rendered: .ci/run installs Debian's kubectl.
    /// </summary>
    public static async Task<RenderedManifests> RenderAsync()
    {
        var kubectl = OpsTools.Kubectl;
        if (kubectl is null)
        {
            var ci = Environment.GetEnvironmentVariable("CI");
            Assert.False(!string.IsNullOrEmpty(ci) && ci != "false",
                "kubectl is not installed, and CI must render the Kubernetes manifests: apt-get install kubectl (.ci/run does)");
            Skip.If(true, "kubectl is not installed (apt-get install kubectl): the Kubernetes manifests are rendered and started in CI");
        }
        var (exitCode, output) = await OpsTools.RunAsync(kubectl!, ["kustomize", OpsTools.DeployPath("kubernetes")]);
        Assert.True(exitCode == 0, $"kubectl kustomize failed:\n{output}");
        var stream = new YamlStream();
        stream.Load(new StringReader(output));
        return new RenderedManifests([.. stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>()]);
    }

    /// <summary>The keys of the Secret <paramref name="name"/> in broker-secret.example.yaml (the environment it gives).</summary>
    public static IEnumerable<string> ExampleSecretKeys(string name)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(OpsTools.DeployPath("kubernetes", "broker-secret.example.yaml"));
        stream.Load(reader);
        var secret = stream.Documents.Select(d => (YamlMappingNode)d.RootNode)
            .Single(d => Text(d, "kind") == "Secret" && Text((YamlMappingNode)d["metadata"], "name") == name);
        return ((YamlMappingNode)secret["stringData"]).Children.Keys.Cast<YamlScalarNode>().Select(k => k.Value!);
    }

    /// <param name="kind">StatefulSet, Deployment, or null for either.</param>
    public (YamlMappingNode Pod, YamlMappingNode Container, YamlMappingNode Spec) Workload(string? kind, string name)
    {
        var workload = documents.SingleOrDefault(d => (kind is null ? Text(d, "kind") is "StatefulSet" or "Deployment" : Text(d, "kind") == kind)
            && Text((YamlMappingNode)d["metadata"], "name") == name);
        Assert.True(workload is not null, $"the rendered manifests have no {kind} {name}");
        var spec = (YamlMappingNode)workload["spec"];
        var pod = (YamlMappingNode)((YamlMappingNode)spec["template"])["spec"];
        return (pod, (YamlMappingNode)((YamlSequenceNode)pod["containers"]).Children[0], spec);
    }

    /// <summary>The broker's pod (workload secretsbroker-broker), container "broker".</summary>
    public PodView BrokerPod()
    {
        var (pod, container, spec) = Workload(null, "secretsbroker-broker");
        var volumes = ((YamlSequenceNode)pod["volumes"]).Children.Cast<YamlMappingNode>().ToDictionary(v => Text(v, "name")!, StringComparer.Ordinal);
        var claims = spec.Children.TryGetValue("volumeClaimTemplates", out var templates)
            ? ((YamlSequenceNode)templates).Children.Cast<YamlMappingNode>().Select(t => Text((YamlMappingNode)t["metadata"], "name")!).ToHashSet(StringComparer.Ordinal)
            : [];
        var mounts = ((YamlSequenceNode)container["volumeMounts"]).Children.Cast<YamlMappingNode>().Select(m =>
        {
            var name = Text(m, "name")!;
            var volume = volumes.TryGetValue(name, out var v) ? v : claims.Contains(name) ? new YamlMappingNode("name", name) : null;
            Assert.True(volume is not null, $"volumeMount {name} has no volume");
            return new VolumeMountView(name, Text(m, "mountPath")!, Text(m, "subPath"), volume);
        }).ToArray();
        return new PodView(pod, container, mounts, claims);
    }

    /// <summary>
    /// The broker's configuration as the container sees it: the appsettings file mounted into the content root, then
    /// the container's literal environment (configuration keys with ':' as separator).
    /// </summary>
    public Dictionary<string, string> BrokerSettings(PodView broker)
    {
        var appsettings = broker.Mounts.Single(m => m.MountPath == "/app/appsettings.Production.json");
        var configMap = Text((YamlMappingNode)appsettings.Volume["configMap"], "name")!;
        var json = ConfigMapData(configMap)![appsettings.SubPath!];
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        var settings = configuration.AsEnumerable().Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in broker.LiteralEnvironment())
        {
            settings[name.Replace("__", ":", StringComparison.Ordinal)] = value;
        }
        return settings;
    }

    /// <summary>The data of a rendered ConfigMap, or null when the manifests do not render it (the operator provides it).</summary>
    public Dictionary<string, string>? ConfigMapData(string name) =>
        documents.SingleOrDefault(d => Text(d, "kind") == "ConfigMap" && Text((YamlMappingNode)d["metadata"], "name") == name) is { } map
            ? ((YamlMappingNode)map["data"]).Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!, StringComparer.Ordinal)
            : null;

    public string[]? ConfigMapKeys(string name) => ConfigMapData(name)?.Keys.ToArray();

    public static string? Text(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(key, out var value) ? ((YamlScalarNode)value).Value : null;
}

public sealed record VolumeMountView(string Name, string MountPath, string? SubPath, YamlMappingNode Volume);

public sealed record PodView(YamlMappingNode Pod, YamlMappingNode Container, IReadOnlyList<VolumeMountView> Mounts, IReadOnlySet<string> ClaimTemplates)
{
    public bool AutomountsServiceAccountToken => RenderedManifests.Text(Pod, "automountServiceAccountToken") == "true";

    /// <summary>The mount a file or directory path is on: a subPath mount of exactly that file, or the deepest directory mount holding it.</summary>
    public VolumeMountView? MountOf(string path) =>
        Mounts.Where(m => m.SubPath is not null ? m.MountPath == path : path == m.MountPath || path.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
            .OrderByDescending(m => m.MountPath.Length)
            .FirstOrDefault();

    /// <summary>Environment variables with a literal value (not valueFrom).</summary>
    public IEnumerable<KeyValuePair<string, string>> LiteralEnvironment() =>
        ((YamlSequenceNode)Container["env"]).Children.Cast<YamlMappingNode>()
            .Where(e => e.Children.ContainsKey("value"))
            .Select(e => KeyValuePair.Create(RenderedManifests.Text(e, "name")!, RenderedManifests.Text(e, "value")!));

    /// <summary>The HTTP path of a probe of the container (the management port's health endpoints).</summary>
    public string Probe(string probe)
    {
        var spec = (YamlMappingNode)Container[probe];
        Assert.True(spec.Children.ContainsKey("httpGet"), $"{probe} is not an HTTP probe");
        return RenderedManifests.Text((YamlMappingNode)spec["httpGet"], "path")!;
    }
}
