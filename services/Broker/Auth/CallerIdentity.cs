using System.Security.Claims;

namespace SecretsBroker.Broker.Auth;

/// <summary>
/// Who is calling, whatever the authentication method: a subject, the method that proved it
/// (dev-token, jwt, mtls) and attributes that policies can template on (namespace, service_account, team, ...).
/// </summary>
public sealed record CallerIdentity(string Subject, string AuthMethod, IReadOnlyDictionary<string, string> Attributes)
{
    public const string SubjectClaim = "sub";
    public const string AuthMethodClaim = "secretsbroker/auth_method";
    public const string AttributeClaimPrefix = "secretsbroker/attr/";

    /// <summary>Who vouched for the subject: the JWT's issuer, the client certificate's issuer; empty for dev tokens.</summary>
    public string Issuer { get; init; } = "";

    /// <summary>
    /// When the credential that proved this identity stops being valid (a JWT's <c>exp</c>, a client certificate's
    /// notAfter); null when it does not expire (dev tokens). Streams end at this instant (docs/leases.md).
    /// </summary>
    public DateTimeOffset? CredentialExpiresAt { get; init; }

    /// <summary>
    /// The whole identity, not the subject alone: method, issuer, subject and namespace. Two callers with the same
    /// subject proved by different methods or issuers, or in different namespaces, are different owners (of leases).
    /// </summary>
    public string IdentityKey => string.Join('\n', AuthMethod, Issuer, Subject, Attributes.GetValueOrDefault("namespace", ""));

    /// <summary>Whether the credential has expired at <paramref name="now"/>.</summary>
    public bool CredentialExpired(DateTimeOffset now) => CredentialExpiresAt is { } expires && now >= expires;

    /// <summary>Builds the claims principal an authentication handler returns for this identity.</summary>
    public ClaimsPrincipal ToPrincipal(string authenticationType)
    {
        // Claims are created with their identity as subject: ClaimsIdentity copies every claim that has another.
        var identity = new CallerClaimsIdentity(this, authenticationType);
        identity.AddClaim(new Claim(SubjectClaim, Subject, ClaimValueTypes.String, ClaimsIdentity.DefaultIssuer, ClaimsIdentity.DefaultIssuer, identity));
        identity.AddClaim(new Claim(AuthMethodClaim, AuthMethod, ClaimValueTypes.String, ClaimsIdentity.DefaultIssuer, ClaimsIdentity.DefaultIssuer, identity));
        foreach (var (name, value) in Attributes)
        {
            identity.AddClaim(new Claim(AttributeClaimPrefix + name, value, ClaimValueTypes.String, ClaimsIdentity.DefaultIssuer, ClaimsIdentity.DefaultIssuer, identity));
        }
        return new ClaimsPrincipal(identity);
    }

    /// <summary>Reads the identity back from an authenticated principal; null when the caller is anonymous.</summary>
    public static CallerIdentity? FromPrincipal(ClaimsPrincipal principal)
    {
        if (principal.Identity is CallerClaimsIdentity { IsAuthenticated: true } known)
        {
            // Built by ToPrincipal in this request: no need to read the claims back.
            return known.Caller;
        }
        if (principal.Identity?.IsAuthenticated != true || principal.FindFirst(SubjectClaim)?.Value is not { } subject)
        {
            return null;
        }
        var attributes = principal.Claims
            .Where(c => c.Type.StartsWith(AttributeClaimPrefix, StringComparison.Ordinal))
            .ToDictionary(c => c.Type[AttributeClaimPrefix.Length..], c => c.Value, StringComparer.Ordinal);
        return new CallerIdentity(subject, principal.FindFirst(AuthMethodClaim)?.Value ?? "unknown", attributes);
    }
}

/// <summary>The claims identity <see cref="CallerIdentity.ToPrincipal"/> builds, carrying the identity it was built from.</summary>
public sealed class CallerClaimsIdentity(CallerIdentity caller, string authenticationType)
    : ClaimsIdentity(authenticationType, CallerIdentity.SubjectClaim, null)
{
    public CallerIdentity Caller { get; } = caller;
}
