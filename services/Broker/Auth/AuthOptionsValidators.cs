using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Auth;

/// <summary>Checks <see cref="JwtAuthOptions"/> at start; every failure names its key.</summary>
public sealed class JwtAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<JwtAuthOptions>
{
    public const int MaxValidationCacheSize = 1_000_000;
    public static readonly TimeSpan MaxValidationCacheTtl = TimeSpan.FromHours(1);

    public ValidateOptionsResult Validate(string? name, JwtAuthOptions o)
    {
        const string section = JwtAuthOptions.SectionName;
        var failures = new List<string>();
        if (o.Enabled && string.IsNullOrWhiteSpace(o.Issuer))
        {
            failures.Add($"{section}:Issuer is required when JWT is enabled");
        }
        if (o.Enabled && o.Audiences.Count == 0)
        {
            failures.Add($"{section}:Audiences needs at least one audience");
        }
        if (o.Enabled && new[] { o.MetadataAddress, o.JwksUrl, o.JwksFile }.Count(s => !string.IsNullOrWhiteSpace(s)) != 1)
        {
            failures.Add($"{section}: set exactly one of MetadataAddress, JwksUrl or JwksFile");
        }
        if (o.ValidationCacheTtl < TimeSpan.Zero || o.ValidationCacheTtl > MaxValidationCacheTtl)
        {
            failures.Add($"{section}:ValidationCacheTtl must be between 00:00:00 (no cache) and 01:00:00");
        }
        if (o.ValidationCacheSize is < 1 or > MaxValidationCacheSize)
        {
            failures.Add($"{section}:ValidationCacheSize must be between 1 and {MaxValidationCacheSize:D}");
        }
        if (o.Enabled && !string.IsNullOrWhiteSpace(o.CaCertificateFile))
        {
            try
            {
                AuthenticationExtensions.LoadCa(o, environment);
            }
            catch (InvalidOperationException)
            {
                failures.Add($"{section}:CaCertificateFile must be a readable PEM file holding the root CA of the metadata/JWKS server");
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Checks <see cref="MtlsAuthOptions"/> at start.</summary>
public sealed class MtlsAuthOptionsValidator : IValidateOptions<MtlsAuthOptions>
{
    public ValidateOptionsResult Validate(string? name, MtlsAuthOptions options) => options.Enabled && options.CaFiles.Count == 0
        ? ValidateOptionsResult.Fail($"{MtlsAuthOptions.SectionName}:CaFiles needs at least one CA file when mTLS is enabled")
        : ValidateOptionsResult.Success;
}

/// <summary>Checks the dev tokens at start: each needs a subject and a 64-digit hex SHA-256.</summary>
public sealed class DevTokenOptionsValidator : IValidateOptions<DevTokenAuthenticationOptions>
{
    public ValidateOptionsResult Validate(string? name, DevTokenAuthenticationOptions options) =>
        options.Tokens.All(t => t.Sha256.Length == 64 && t.Sha256.All(char.IsAsciiHexDigit) && t.Subject.Length > 0)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{AuthenticationExtensions.SectionName}:DevTokens:Tokens: every token needs a Subject and a 64-character hex Sha256");
}
