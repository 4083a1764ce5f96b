using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// The Dapr secrets API drop-in (<c>Broker:Dapr</c>, docs/http.md): off unless enabled. Dapr's sidecar serves HTTP on 3500 by
/// default (DAPR_HTTP_PORT); an app's code reads <c>/v1.0/secrets/{store}/{key}</c> there.
/// </summary>
public sealed class DaprOptions
{
    public const string SectionName = "Broker:Dapr";

    public bool Enabled { get; set; }

    /// <summary>Loopback addresses to listen on.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:3500";

    /// <summary>
    /// When set, requests must carry it in <c>dapr-api-token</c>, as a sidecar started with DAPR_API_TOKEN requires
    /// (dapr pkg/api/http/middlewares.go APITokenAuthMiddleware).
    /// </summary>
    public string? ApiToken { get; set; }

    /// <summary>Secret store names and the logical path prefix (a mount, or a folder in one) each reads beneath. At least one.</summary>
    public Dictionary<string, string> Stores { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The identity every request on this port acts as.</summary>
    public DropInIdentity Identity { get; set; } = new();
}

internal sealed class DaprOptionsValidator : IValidateOptions<DaprOptions>
{
    public ValidateOptionsResult Validate(string? name, DaprOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        if (options.Stores.Count == 0)
        {
            failures.Add($"{DaprOptions.SectionName}:Stores must name at least one store and its logical path prefix");
        }
        foreach (var (store, prefix) in options.Stores)
        {
            if (LogicalPath.Validate(prefix) is not null)
            {
                failures.Add($"{DaprOptions.SectionName}:Stores:{store} must be a logical path prefix such as kv/teams/alpha");
            }
        }
        if (string.IsNullOrWhiteSpace(options.Identity.Subject))
        {
            failures.Add($"{DaprOptions.SectionName}:Identity:Subject is required (the policy subject requests on this port act as)");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
