using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Policy;

/// <summary>Where the policies come from (<c>Broker:Policy</c>).</summary>
public sealed class PolicyOptions
{
    public const string SectionName = "Broker:Policy";

    /// <summary>The policy file (YAML or JSON by extension), relative to the content root. Required.</summary>
    public string? File { get; set; }

    /// <summary>Reload the file when it changes (a broken edit keeps the previous policy).</summary>
    public bool Watch { get; set; } = true;
}

public sealed class PolicyOptionsValidator : IValidateOptions<PolicyOptions>
{
    public ValidateOptionsResult Validate(string? name, PolicyOptions options) => string.IsNullOrWhiteSpace(options.File)
        ? ValidateOptionsResult.Fail(
            $"{PolicyOptions.SectionName}:File is required: the broker denies everything it is not granted, so it needs a policy file (see README, 'Policies')")
        : ValidateOptionsResult.Success;
}
