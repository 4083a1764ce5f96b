using SecretsBroker.Audit.Contracts;
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
    public string Sha256
    {
        get;
        set
        {
            field = value;
            _hash = null;
        }
    } = "";

    private byte[]? _hash;

    /// <summary><see cref="Sha256"/> as bytes (validated at start to be 64 hex digits).</summary>
    internal byte[] Hash => _hash ??= Convert.FromHexString(Sha256);

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
        if (!BearerTokens.TryParse(header, out var bearer) || bearer.IsEmpty)
        {
            return Task.FromResult(AuthenticateResult.Fail("the authorization header must be 'Bearer <token>'"));
        }
        var tokens = Options.Tokens;
        var index = BearerTokens.Match(bearer, tokens, static token => token.Hash);
        if (index < 0)
        {
            return Task.FromResult(AuthenticateResult.Fail("the bearer token is not valid"));
        }
        var match = tokens[index];
        var identity = new CallerIdentity(match.Subject, AuthMethod, match.Attributes);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(identity.ToPrincipal(SchemeName), SchemeName)));
    }
}
