using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary>
/// Operators allowed to call AuditLog (<c>Audit:Auth</c>): static bearer tokens, of which configuration
/// holds only the SHA-256 (<c>printf %s TOKEN | sha256sum</c>).
/// </summary>
public sealed class OperatorAuthOptions
{
    public const string SectionName = "Audit:Auth";

    public List<OperatorToken> Tokens { get; set; } = [];
}

public sealed class OperatorToken
{
    /// <summary>Who holds the token, for logs (e.g. <c>oncall</c>).</summary>
    public string Name { get; set; } = "";

    /// <summary>Hex SHA-256 of the token's UTF-8 bytes.</summary>
    public string Sha256 { get; set; } = "";
}

public sealed class OperatorAuthOptionsValidator : IValidateOptions<OperatorAuthOptions>
{
    public ValidateOptionsResult Validate(string? name, OperatorAuthOptions options)
    {
        if (options.Tokens.Count == 0)
        {
            return ValidateOptionsResult.Fail($"{OperatorAuthOptions.SectionName}:Tokens needs at least one operator token (Name and Sha256 = printf %s TOKEN | sha256sum)");
        }
        for (var i = 0; i < options.Tokens.Count; i++)
        {
            var token = options.Tokens[i];
            if (string.IsNullOrWhiteSpace(token.Name))
            {
                return ValidateOptionsResult.Fail($"{OperatorAuthOptions.SectionName}:Tokens:{i}:Name is required");
            }
            if (token.Sha256.Length != 64 || !token.Sha256.All(Uri.IsHexDigit))
            {
                return ValidateOptionsResult.Fail($"{OperatorAuthOptions.SectionName}:Tokens:{i}:Sha256 must be 64 hex digits (the SHA-256 of the token)");
            }
        }
        return ValidateOptionsResult.Success;
    }
}
