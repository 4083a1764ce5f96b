using System.Globalization;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

public sealed partial class VaultState
{
    private VaultResult RenewSelf(VaultRequest r, NamespaceState ns, string path)
    {
        var token = Authorize(r, ns, path, "update");
        if (RenewSelfRefused)
        {
            return VaultResult.PermissionDenied();
        }
        if (!token.Renewable)
        {
            return VaultResult.BadRequest("lease is not renewable");
        }
        var now = Now;
        var requested = Formats.ParseDuration(r.Param("increment")) is > 0 and var inc ? inc : token.Period > 0 ? token.Period : token.CreationTtl;
        var ttl = requested;
        string[] warnings = [];
        if (token.MaxExpireAt is { } max)
        {
            var remaining = (long)(max - now).TotalSeconds;
            if (remaining < ttl)
            {
                warnings = [$"TTL of \"{requested}s\" exceeded the effective max_ttl of \"{remaining}s\"; TTL value is capped accordingly"];
                ttl = Math.Max(0, remaining);
            }
        }
        token.ExpireAt = now.AddSeconds(ttl);
        return Envelope(null, auth: AuthBlock(token, ttl), warnings: warnings);
    }

    /// <summary>Routes auth/&lt;mount&gt;/... to the method mounted there: login for every type, role endpoints for approle.</summary>
    private VaultResult AuthMethod(VaultRequest r, NamespaceState ns, AuthMount mount, string mountPath, string rest, string path)
    {
        if (rest == "login")
        {
            return RequireWrite(r, () => mount.Type switch
            {
                "approle" => LoginAppRole(ns, mount, mountPath, r),
                "kubernetes" => LoginKubernetes(ns, mount, mountPath, r),
                "jwt" => LoginJwt(ns, mount, mountPath, r),
                _ => VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found."),
            });
        }
        if (mount.Type == "approle" && rest.Split('/') is ["role", var roleName, var endpoint])
        {
            return AppRoleEndpoint(r, ns, mount, roleName, endpoint, path);
        }
        return VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found.");
    }

    private VaultResult Login(NamespaceState ns, string method, string mountPath, AuthRole role, Dictionary<string, string> meta, string displayName)
    {
        var token = CreateToken(ns.Name, null, role.Policies, role.TokenTtl, role.TokenMaxTtl, role.TokenPeriod, renewable: true,
            $"{method}-{displayName}", $"auth/{mountPath}/login", meta, role.NoDefaultPolicy);
        _logins[method] = _logins.GetValueOrDefault(method) + 1;
        return Envelope(null, auth: AuthBlock(token, token.CreationTtl));
    }

    private VaultResult LoginKubernetes(NamespaceState ns, AuthMount mount, string mountPath, VaultRequest r)
    {
        var roleName = r.Param("role");
        var jwt = r.Param("jwt");
        if (string.IsNullOrEmpty(roleName))
        {
            return VaultResult.BadRequest("missing role");
        }
        if (string.IsNullOrEmpty(jwt))
        {
            return VaultResult.BadRequest("missing jwt");
        }
        if (!mount.Roles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"invalid role name \"{roleName}\"");
        }
        var claims = JwtVerifier.Verify(jwt, mount.PemKeys, Now);
        if (claims is null)
        {
            return VaultResult.PermissionDenied();
        }
        var saName = claims["kubernetes.io/serviceaccount/service-account.name"]?.GetValue<string>()
            ?? claims["kubernetes.io"]?["serviceaccount"]?["name"]?.GetValue<string>();
        var saNamespace = claims["kubernetes.io/serviceaccount/namespace"]?.GetValue<string>()
            ?? claims["kubernetes.io"]?["namespace"]?.GetValue<string>();
        if (saName is null && claims["sub"]?.GetValue<string>() is { } sub && sub.Split(':') is ["system", "serviceaccount", var sns, var sname])
        {
            saName = sname;
            saNamespace = sns;
        }
        if (saName is null || saNamespace is null)
        {
            return VaultResult.PermissionDenied();
        }
        if (!(role.BoundServiceAccountNames.Contains("*") || role.BoundServiceAccountNames.Contains(saName)))
        {
            return VaultResult.Error(403, "service account name not authorized");
        }
        if (!(role.BoundServiceAccountNamespaces.Contains("*") || role.BoundServiceAccountNamespaces.Contains(saNamespace)))
        {
            return VaultResult.Error(403, "namespace not authorized");
        }
        return Login(ns, "kubernetes", mountPath, role, new()
        {
            ["role"] = role.Name,
            ["service_account_name"] = saName,
            ["service_account_namespace"] = saNamespace,
        }, saNamespace + "-" + saName);
    }

    private VaultResult LoginJwt(NamespaceState ns, AuthMount mount, string mountPath, VaultRequest r)
    {
        var roleName = r.Param("role");
        var jwt = r.Param("jwt");
        if (string.IsNullOrEmpty(jwt))
        {
            return VaultResult.BadRequest("missing token");
        }
        if (string.IsNullOrEmpty(roleName) || !mount.Roles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"role \"{roleName}\" could not be found");
        }
        var claims = JwtVerifier.Verify(jwt, mount.JwtValidationKeys, Now);
        if (claims is null)
        {
            return VaultResult.BadRequest("error validating token: invalid signature or expired token");
        }
        if (mount.BoundIssuer is { } issuer && claims["iss"]?.GetValue<string>() != issuer)
        {
            return VaultResult.BadRequest("error validating token: invalid issuer (iss) claim");
        }
        if (role.BoundAudiences.Length > 0)
        {
            var aud = claims["aud"] switch
            {
                JsonArray array => [.. array.Select(a => a!.GetValue<string>())],
                JsonValue v => new[] { v.GetValue<string>() },
                _ => [],
            };
            if (!aud.Any(role.BoundAudiences.Contains))
            {
                return VaultResult.BadRequest("error validating token: invalid audience (aud) claim: audience claim does not match any expected audience");
            }
        }
        if (role.BoundSubject is { Length: > 0 } subject && claims["sub"]?.GetValue<string>() != subject)
        {
            return VaultResult.BadRequest("error validating token: sub claim does not match bound subject");
        }
        var user = claims[role.UserClaim]?.ToString();
        if (user is null)
        {
            return VaultResult.BadRequest($"claim \"{role.UserClaim}\" not found in token");
        }
        return Login(ns, "jwt", mountPath, role, new() { ["role"] = role.Name }, user);
    }
}
