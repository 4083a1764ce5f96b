using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Files;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Policy;

/// <summary>
/// Decides what a caller may do, from the policy file at <c>Broker:Policy:File</c>. The file is
/// validated at start (a broken file stops the broker) and reloaded on change (a broken edit keeps the
/// previous policy and logs why).
/// </summary>
public sealed class PolicyEvaluator : IDisposable
{
    public const string SectionName = "Broker:Policy";

    private readonly ReloadingFile<PolicySet> _file;

    public PolicyEvaluator(IConfiguration configuration, IHostEnvironment environment, ILogger<PolicyEvaluator> logger)
    {
        var file = configuration[$"{SectionName}:File"];
        if (string.IsNullOrWhiteSpace(file))
        {
            throw new InvalidOperationException(
                $"{SectionName}:File is required: the broker denies everything it is not granted, so it needs a policy file (see README, 'Policies')");
        }
        var path = Path.Combine(environment.ContentRootPath, file);
        var isYaml = Path.GetExtension(path) is ".yaml" or ".yml";
        _file = new ReloadingFile<PolicySet>(path, "policy file", (content, _) => PolicySet.Parse(content, isYaml),
            configuration.GetValue($"{SectionName}:Watch", defaultValue: true), logger);
    }

    public bool IsAllowed(CallerIdentity identity, Capability capability, string path) => _file.Current.IsAllowed(identity, capability, path);

    /// <summary>Throws PERMISSION_DENIED unless the caller holds <paramref name="capability"/> on <paramref name="path"/>.</summary>
    public void EnsureAllowed(CallerIdentity identity, Capability capability, string path)
    {
        if (!IsAllowed(identity, capability, path))
        {
            throw Denied(capability);
        }
    }

    /// <summary>The one denial every caller sees, whether or not the secret exists.</summary>
    public static BrokerException Denied(Capability capability) =>
        new(BrokerErrorKind.PermissionDenied, $"permission denied: no policy grants {capability.ToString().ToLowerInvariant()} on this path");

    public void Dispose() => _file.Dispose();
}
