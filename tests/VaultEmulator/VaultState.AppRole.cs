using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>
/// The AppRole auth method: login with role_id + secret_id, and the role endpoints a platform uses to
/// hand out secret_ids (builtin/credential/approle/path_login.go, path_role.go, validation.go).
/// </summary>
public sealed partial class VaultState
{
    /// <summary>
    /// Registers a secret_id on <paramref name="role"/>; <paramref name="numUses"/> 0 and <paramref name="ttl"/> 0
    /// mean unlimited (validation.go, registerSecretIDEntry: ExpirationTime = now + ttl when ttl is set).
    /// </summary>
    public SecretIdEntry AddSecretId(AuthRole role, string value, int numUses, long ttl)
    {
        var entry = new SecretIdEntry
        {
            Value = value,
            Accessor = Formats.Uuid(),
            NumUses = numUses,
            Ttl = ttl,
            ExpireAt = ttl > 0 ? Now.AddSeconds(Math.Min(ttl, SystemMaxTtl)) : null,
        };
        role.SecretIds.Add(entry);
        return entry;
    }

    private VaultResult LoginAppRole(NamespaceState ns, AuthMount mount, string mountPath, VaultRequest r)
    {
        var roleId = r.Param("role_id")?.Trim();
        if (string.IsNullOrEmpty(roleId))
        {
            return VaultResult.BadRequest("missing role_id");
        }
        var role = mount.Roles.Values.FirstOrDefault(x => x.RoleId == roleId);
        if (role is null)
        {
            return VaultResult.BadRequest("invalid role or secret ID");
        }
        var secretId = r.Param("secret_id")?.Trim();
        if (string.IsNullOrEmpty(secretId))
        {
            return VaultResult.BadRequest("missing secret_id");
        }
        var entry = role.SecretIds.FirstOrDefault(e => e.Value == secretId);
        if (entry?.ExpireAt is { } expires && Now >= expires)
        {
            // Vault deletes expired secret_ids in the backend's periodic tidy (path_tidy_user_id.go), run every
            // minute; from then on the login fails as for an unknown secret_id. The emulator tidies at expiry.
            role.SecretIds.Remove(entry);
            entry = null;
        }
        if (entry is null)
        {
            return VaultResult.BadRequest("invalid role or secret ID");
        }
        // path_login.go: the last permitted use deletes the secret_id (the login still succeeds); otherwise the count drops by one.
        if (entry.NumUses == 1)
        {
            role.SecretIds.Remove(entry);
        }
        else if (entry.NumUses > 1)
        {
            entry.NumUses--;
        }
        return Login(ns, "approle", mountPath, role, new() { ["role_name"] = role.Name }, role.Name);
    }

    /// <summary>role/&lt;name&gt;/secret-id (generate), custom-secret-id (given value) and role-id (read).</summary>
    private VaultResult AppRoleEndpoint(VaultRequest r, NamespaceState ns, AuthMount mount, string roleName, string endpoint, string path)
    {
        switch (endpoint)
        {
            case "role-id" when r.Method == "GET":
                Authorize(r, ns, path, "read");
                return mount.Roles.TryGetValue(roleName, out var read)
                    ? Envelope(new JsonObject { ["role_id"] = read.RoleId })
                    : VaultResult.Error(404);
            case "secret-id" or "custom-secret-id" when r.Method is "POST" or "PUT":
                {
                    Authorize(r, ns, path, "update");
                    if (!mount.Roles.TryGetValue(roleName, out var role))
                    {
                        return VaultResult.BadRequest($"role \"{roleName}\" does not exist");
                    }
                    var value = Formats.RandomId(36);
                    if (endpoint == "custom-secret-id")
                    {
                        value = r.Param("secret_id") ?? "";
                        if (value.Length == 0)
                        {
                            return VaultResult.BadRequest("missing secret_id");
                        }
                        if (role.SecretIds.Any(e => e.Value == value))
                        {
                            return VaultResult.BadRequest("SecretID is already registered");
                        }
                    }
                    // path_role.go, handleRoleSecretIDCommon: num_uses and ttl may narrow the role's limits, never widen them.
                    var numUses = role.SecretIdNumUses;
                    if (r.Body?["num_uses"] is { } numUsesNode)
                    {
                        numUses = Formats.WeakInt(numUsesNode) ?? throw new VaultErrorException(VaultResult.BadRequest("invalid num_uses"));
                        if (numUses < 0)
                        {
                            return VaultResult.BadRequest("num_uses cannot be negative");
                        }
                        if (role.SecretIdNumUses > 0 && (numUses == 0 || numUses > role.SecretIdNumUses))
                        {
                            return VaultResult.BadRequest("num_uses cannot be higher than the role's secret_id_num_uses");
                        }
                    }
                    var ttl = role.SecretIdTtl;
                    if (r.Body?["ttl"] is { } ttlNode)
                    {
                        ttl = Formats.ParseDuration(ttlNode) ?? 0;
                        if (role.SecretIdTtl > 0 && (ttl == 0 || ttl > role.SecretIdTtl))
                        {
                            return VaultResult.BadRequest("ttl cannot be longer than the role's secret_id_ttl");
                        }
                    }
                    var entry = AddSecretId(role, value, (int)numUses, ttl);
                    return Envelope(new JsonObject
                    {
                        ["secret_id"] = entry.Value,
                        ["secret_id_accessor"] = entry.Accessor,
                        ["secret_id_ttl"] = entry.Ttl,
                        ["secret_id_num_uses"] = entry.NumUses,
                    });
                }
        }
        return VaultResult.Error(405, "unsupported operation");
    }
}
