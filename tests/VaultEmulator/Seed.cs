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
            foreach (var (mountName, secrets) in kv)
            {
                if (!ns.KvMounts.TryGetValue(mountName, out var mount))
                {
                    mount = ns.KvMounts[mountName] = new KvMount();
                }
                foreach (var (path, versions) in secrets!.AsObject())
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
        ReadDynamicRoles(seed["database"]?["roles"], ns.DatabaseRoles);
        ReadDynamicRoles(seed["aws"]?["roles"], ns.AwsRoles);
        if (seed["tokens"] is JsonArray tokens)
        {
            foreach (var token in tokens)
            {
                state.CreateToken(ns.Name, token!["id"]?.GetValue<string>(), Formats.ReadStrings(token["policies"]),
                    Formats.ParseDuration(token["ttl"]) ?? 0, Formats.ParseDuration(token["explicit_max_ttl"]) ?? 0,
                    Formats.ParseDuration(token["period"]) ?? 0, token["renewable"]?.GetValue<bool>() ?? true,
                    "token", "auth/token/create", []);
            }
        }
        if (seed["auth"] is JsonObject auth)
        {
            ReadAuthRoles(auth["approle"]?["roles"], ns.AppRoles);
            ReadAuthRoles(auth["kubernetes"]?["roles"], ns.KubernetesRoles);
            ns.KubernetesPemKeys.AddRange(Formats.ReadStrings(auth["kubernetes"]?["pem_keys"]));
            ReadAuthRoles(auth["jwt"]?["roles"], ns.JwtRoles);
            ns.JwtValidationKeys.AddRange(Formats.ReadStrings(auth["jwt"]?["jwt_validation_pubkeys"]));
            ns.JwtBoundIssuer = auth["jwt"]?["bound_issuer"]?.GetValue<string>();
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

    private static void ReadAuthRoles(JsonNode? roles, Dictionary<string, AuthRole> into)
    {
        if (roles is not JsonObject obj)
        {
            return;
        }
        foreach (var (name, role) in obj)
        {
            var r = role!.AsObject();
            into[name] = new AuthRole
            {
                Name = name,
                Policies = Formats.ReadStrings(r["token_policies"] ?? r["policies"]),
                TokenTtl = Formats.ParseDuration(r["token_ttl"]) ?? 0,
                TokenMaxTtl = Formats.ParseDuration(r["token_max_ttl"]) ?? 0,
                TokenPeriod = Formats.ParseDuration(r["token_period"]) ?? 0,
                RoleId = r["role_id"]?.GetValue<string>(),
                SecretIds = Formats.ReadStrings(r["secret_ids"]),
                BoundServiceAccountNames = Formats.ReadStrings(r["bound_service_account_names"]),
                BoundServiceAccountNamespaces = Formats.ReadStrings(r["bound_service_account_namespaces"]),
                BoundAudiences = Formats.ReadStrings(r["bound_audiences"]),
                BoundSubject = r["bound_subject"]?.GetValue<string>(),
                UserClaim = r["user_claim"]?.GetValue<string>() ?? "sub",
            };
        }
    }
}
