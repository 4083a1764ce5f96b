using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// The AWS Secrets Manager Agent drop-in (<c>Broker:AwsAgent</c>, docs/http.md): off unless enabled. Defaults follow the agent's
/// (aws-secretsmanager-agent src/config.rs: http_port 2773, ssrf_headers X-Aws-Parameters-Secrets-Token and X-Vault-Token,
/// path_prefix /v1/).
/// </summary>
public sealed class AwsAgentOptions
{
    public const string SectionName = "Broker:AwsAgent";

    public bool Enabled { get; set; }

    /// <summary>Loopback addresses to listen on; the agent's port by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:2773";

    /// <summary>The SSRF token callers must send (the agent reads it from AWS_TOKEN); this or <see cref="TokenFile"/> is required.</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the SSRF token (the agent's <c>file://</c> form), read at start.</summary>
    public string? TokenFile { get; set; }

    /// <summary>Headers that may carry the SSRF token.</summary>
    public List<string> TokenHeaders { get; set; } = [];

    /// <summary>Logical path prefix a secretId is read beneath: <c>aws/prod</c> makes <c>db</c> mean <c>aws/prod/db</c>. Required.</summary>
    public string MountPrefix { get; set; } = "";

    /// <summary>The ARN given for a secretId is this prefix and the secretId (the broker knows no account or region).</summary>
    public string ArnPrefix { get; set; } = "arn:aws:secretsmanager:local:000000000000:secret:";

    /// <summary>The identity every request on this port acts as.</summary>
    public DropInIdentity Identity { get; set; } = new();

    internal static readonly string[] DefaultTokenHeaders = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"];

    internal IReadOnlyList<string> EffectiveTokenHeaders => TokenHeaders.Count > 0 ? TokenHeaders : DefaultTokenHeaders;
}

internal sealed class AwsAgentOptionsValidator(IHostEnvironment environment) : IValidateOptions<AwsAgentOptions>
{
    public ValidateOptionsResult Validate(string? name, AwsAgentOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        var failures = new List<string>();
        if (string.IsNullOrEmpty(options.Token) && string.IsNullOrEmpty(options.TokenFile))
        {
            failures.Add($"{AwsAgentOptions.SectionName}: Token or TokenFile is required (the SSRF token callers send)");
        }
        else if (options.TokenFile is { Length: > 0 } file && !File.Exists(Path.Combine(environment.ContentRootPath, file)))
        {
            failures.Add($"{AwsAgentOptions.SectionName}:TokenFile: the file does not exist");
        }
        if (LogicalPath.Validate(options.MountPrefix) is not null)
        {
            failures.Add($"{AwsAgentOptions.SectionName}:MountPrefix must be a logical path prefix such as aws/prod");
        }
        if (string.IsNullOrWhiteSpace(options.Identity.Subject))
        {
            failures.Add($"{AwsAgentOptions.SectionName}:Identity:Subject is required (the policy subject requests on this port act as)");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
