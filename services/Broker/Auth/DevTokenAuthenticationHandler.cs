using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Auth;

/// <summary>
/// Static bearer tokens for development. Configuration holds only each token's SHA-256; a presented
/// token is hashed and compared in constant time, so neither the config nor a timing side channel
/// reveals a token.
/// </summary>
public sealed class DevTokenAuthenticationOptions : AuthenticationSchemeOptions
{
    public List<DevToken> Tokens { get; set; } = [];
}

public sealed class DevToken
{
    /// <summary>The identity's subject, for example <c>dev-user</c>.</summary>
    public string Subject { get; set; } = "";

    /// <summary>Hex SHA-256 of the token's UTF-8 bytes (<c>printf %s TOKEN | sha256sum</c>).</summary>
    public string Sha256 { get; set; } = "";

    /// <summary>Attributes for policy templates (namespace, team, ...).</summary>
    public Dictionary<string, string> Attributes { get; set; } = [];
}

public sealed class DevTokenAuthenticationHandler(
    IOptionsMonitor<DevTokenAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<DevTokenAuthenticationOptions>(options, logger, encoder)
{
    public const string SchemeName = "DevToken";
    public const string AuthMethod = "dev-token";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length == "Bearer ".Length)
        {
            return Task.FromResult(AuthenticateResult.Fail("the authorization header must be 'Bearer <token>'"));
        }

        Span<byte> presented = stackalloc byte[SHA256.HashSizeInBytes];
        var bearer = header.AsSpan("Bearer ".Length).Trim();
        var utf8 = bearer.Length <= 256 ? stackalloc byte[256 * 3] : new byte[Encoding.UTF8.GetMaxByteCount(bearer.Length)];
        SHA256.HashData(utf8[..Encoding.UTF8.GetBytes(bearer, utf8)], presented);
        Span<byte> expected = stackalloc byte[SHA256.HashSizeInBytes];
        DevToken? match = null;
        foreach (var token in Options.Tokens)
        {
            // Every configured hash is compared, so the time taken does not reveal which one matched.
            Convert.FromHexString(token.Sha256, expected, out _, out _);
            if (CryptographicOperations.FixedTimeEquals(presented, expected))
            {
                match = token;
            }
        }
        if (match is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("the bearer token is not valid"));
        }
        var identity = new CallerIdentity(match.Subject, AuthMethod, match.Attributes);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(identity.ToPrincipal(SchemeName), SchemeName)));
    }
}
