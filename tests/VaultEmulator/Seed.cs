using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>
/// Loads seed data (see README section in docs/vault.md): policies, tokens, KV secrets, database and AWS
/// roles, auth roles, and the same shape again per namespace under "namespaces".
/// </summary>
public static class Seed
{
    public static void Apply(VaultState state, JsonObject seed)
    {
        ApplyNamespace(state, state.GetOrAddNamespace(""), seed);
        if (seed["namespaces"] is JsonObject namespaces)
        {
            foreach (var (name, node) in namespaces)
            {
                ApplyNamespace(state, state.GetOrAddNamespace(name.Trim('/')), node!.AsObject());
            }
        }
    }

    private static void ApplyNamespace(VaultState state, NamespaceState ns, JsonObject seed)
    {
        if (seed["policies"] is JsonObject policies)
        {
            foreach (var (name, rules) in policies)
            {
                ns.Policies[name] = [.. rules!.AsArray().Select(r => new PolicyRule(
                    r!["path"]!.GetValue<string>(),
                    Formats.ReadStrings(r["capabilities"]).ToHashSet(StringComparer.Ordinal)))];
            }
        }
        if (seed["kv"] is JsonObject kv)
        {
            foreach (var (mountName, kvSecrets) in kv)
            {
                if (!ns.KvMounts.TryGetValue(mountName, out var mount))
                {
                    mount = ns.KvMounts[mountName] = new KvMount();
                }
                foreach (var (path, versions) in kvSecrets!.AsObject())
                {
                    var list = versions is JsonArray array ? [.. array] : new List<JsonNode?> { versions };
                    foreach (var version in list)
                    {
                        var obj = version!.AsObject();
                        var deleted = obj["__deleted"]?.GetValue<bool>() ?? false;
                        var destroyed = obj["__destroyed"]?.GetValue<bool>() ?? false;
                        var data = new JsonObject();
                        foreach (var (k, v) in obj)
                        {
                            if (!k.StartsWith("__", StringComparison.Ordinal))
                            {
                                data[k] = v?.DeepClone();
                            }
                        }
                        var written = state.KvPut(mount, path, data);
                        if (deleted || destroyed)
                        {
                            var entry = written.Versions[written.CurrentVersion];
                            entry.DeletedAt = deleted ? state.Now : null;
                            if (destroyed)
                            {
                                entry.Destroyed = true;
                                entry.Data.Clear();
                            }
                        }
                    }
                }
            }
        }
        // Engines at their default paths ("database", "aws"), or at "path"; "secrets" mounts engines anywhere.
        foreach (var type in new[] { "database", "aws" })
        {
            if (seed[type] is JsonObject engine)
            {
                ReadDynamicRoles(engine["roles"], ns.Engine(engine["path"]?.GetValue<string>().Trim('/') ?? type, type).Roles);
            }
        }
        if (seed["secrets"] is JsonObject secrets)
        {
            foreach (var (path, engine) in secrets)
            {
                ReadDynamicRoles(engine!["roles"], ns.Engine(path.Trim('/'), engine["type"]!.GetValue<string>()).Roles);
            }
        }
        if (seed["tokens"] is JsonArray tokens)
        {
            foreach (var token in tokens)
            {
                state.CreateToken(ns.Name, token!["id"]?.GetValue<string>(), Formats.ReadStrings(token["policies"]),
                    Formats.ParseDuration(token["ttl"]) ?? 0, Formats.ParseDuration(token["explicit_max_ttl"]) ?? 0,
                    Formats.ParseDuration(token["period"]) ?? 0, token["renewable"]?.GetValue<bool>() ?? true,
                    "token", "auth/token/create", [], token["no_default_policy"]?.GetValue<bool>() ?? false);
            }
        }
        if (seed["auth"] is JsonObject auth)
        {
            // Keyed by mount path; "type" defaults to the path for the methods' default mounts (approle, kubernetes, jwt).
            foreach (var (path, node) in auth)
            {
                var config = node!.AsObject();
                var mount = ns.Auth(path.Trim('/'), config["type"]?.GetValue<string>() ?? path.Trim('/'));
                ReadAuthRoles(state, config["roles"], mount.Roles);
                mount.PemKeys.AddRange(Formats.ReadStrings(config["pem_keys"]));
                mount.JwtValidationKeys.AddRange(Formats.ReadStrings(config["jwt_validation_pubkeys"]));
                mount.BoundIssuer = config["bound_issuer"]?.GetValue<string>() ?? mount.BoundIssuer;
            }
        }
    }

    private static void ReadDynamicRoles(JsonNode? roles, Dictionary<string, DynamicRole> into)
    {
        if (roles is not JsonObject obj)
        {
            return;
        }
        foreach (var (name, role) in obj)
        {
            into[name] = new DynamicRole
            {
                Name = name,
                DefaultTtl = Formats.ParseDuration(role?["default_ttl"] ?? role?["default_sts_ttl"]) ?? 0,
                MaxTtl = Formats.ParseDuration(role?["max_ttl"] ?? role?["max_sts_ttl"]) ?? 0,
                CredentialType = role?["credential_type"]?.GetValue<string>() ?? "iam_user",
            };
        }
    }

    private static void ReadAuthRoles(VaultState state, JsonNode? roles, Dictionary<string, AuthRole> into)
    {
        if (roles is not JsonObject obj)
        {
            return;
        }
        foreach (var (name, role) in obj)
        {
            var r = role!.AsObject();
            var entry = into[name] = new AuthRole
            {
                Name = name,
                Policies = Formats.ReadStrings(r["token_policies"] ?? r["policies"]),
                TokenTtl = Formats.ParseDuration(r["token_ttl"]) ?? 0,
                TokenMaxTtl = Formats.ParseDuration(r["token_max_ttl"]) ?? 0,
                TokenPeriod = Formats.ParseDuration(r["token_period"]) ?? 0,
                NoDefaultPolicy = r["token_no_default_policy"]?.GetValue<bool>() ?? false,
                RoleId = r["role_id"]?.GetValue<string>(),
                SecretIdNumUses = Formats.ParseDuration(r["secret_id_num_uses"]) ?? 0,
                SecretIdTtl = Formats.ParseDuration(r["secret_id_ttl"]) ?? 0,
                BoundServiceAccountNames = Formats.ReadStrings(r["bound_service_account_names"]),
                BoundServiceAccountNamespaces = Formats.ReadStrings(r["bound_service_account_namespaces"]),
                BoundAudiences = Formats.ReadStrings(r["bound_audiences"]),
                BoundSubject = r["bound_subject"]?.GetValue<string>(),
                UserClaim = r["user_claim"]?.GetValue<string>() ?? "sub",
            };
            // "secret_ids": ["s"] takes the role's num_uses and ttl; {"secret_id": "s", "num_uses": 1, "ttl": "60s"} sets its own.
            foreach (var secretId in r["secret_ids"] as JsonArray ?? [])
            {
                if (secretId is JsonObject custom)
                {
                    state.AddSecretId(entry, custom["secret_id"]!.GetValue<string>(),
                        (int)(Formats.ParseDuration(custom["num_uses"]) ?? entry.SecretIdNumUses), Formats.ParseDuration(custom["ttl"]) ?? entry.SecretIdTtl);
                }
                else
                {
                    state.AddSecretId(entry, secretId!.GetValue<string>(), (int)entry.SecretIdNumUses, entry.SecretIdTtl);
                }
            }
        }
    }
}
