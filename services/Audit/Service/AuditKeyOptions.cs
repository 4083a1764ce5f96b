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
    public ValidateOptionsResult Validate(string? name, AuditKeyOptions options)
    {
        try
        {
            _ = AuditKey.FromBase64(options.Key);
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            // The message never contains the key itself.
            return ValidateOptionsResult.Fail($"Audit:Key: {e.Message}");
        }
    }
}
