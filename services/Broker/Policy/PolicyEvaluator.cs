using Microsoft.Extensions.Options;
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
    private readonly ReloadingFile<PolicySet> _file;

    /// <param name="reloads">Null only in unit tests that build an evaluator without the broker's services.</param>
    public PolicyEvaluator(IOptions<PolicyOptions> options, IHostEnvironment environment, ILogger<PolicyEvaluator> logger, ConfigReloads? reloads = null)
    {
        var settings = options.Value;
        var path = Path.Combine(environment.ContentRootPath, settings.File!);
        var isYaml = Path.GetExtension(path) is ".yaml" or ".yml";
        _file = new ReloadingFile<PolicySet>(path, "policy file", (content, _) => PolicySet.Parse(content, isYaml), settings.Watch, logger,
            reloads?.Track("policy", "policy file"));
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
