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

    /// <summary>Builds the claims principal an authentication handler returns for this identity.</summary>
    public ClaimsPrincipal ToPrincipal(string authenticationType)
    {
        var claims = new List<Claim> { new(SubjectClaim, Subject), new(AuthMethodClaim, AuthMethod) };
        claims.AddRange(Attributes.Select(a => new Claim(AttributeClaimPrefix + a.Key, a.Value)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType, SubjectClaim, null));
    }

    /// <summary>Reads the identity back from an authenticated principal; null when the caller is anonymous.</summary>
    public static CallerIdentity? FromPrincipal(ClaimsPrincipal principal)
    {
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
