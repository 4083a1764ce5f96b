using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;

namespace SecretsBroker.Audit.Service;

/// <summary>The deployment's audit key (<c>Audit:Key</c>, base64 of 32 bytes), the same one the brokers use.</summary>
public sealed class AuditKeyOptions
{
    public const string SectionName = "Audit";

    public string Key { get; set; } = "";
}

public sealed class AuditKeyOptionsValidator : IValidateOptions<AuditKeyOptions>
{
    public ValidateOptionsResult Validate(string? name, AuditKeyOptions options) =>
        AuditKey.Problem(options.Key) is { } problem ? ValidateOptionsResult.Fail($"Audit:Key: {problem}") : ValidateOptionsResult.Success;
}
