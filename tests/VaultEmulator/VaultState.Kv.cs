using System.Globalization;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

public sealed partial class VaultState
{
    // ---- KV v2 ---------------------------------------------------------------------------------

    public KvSecret KvPut(KvMount mount, string path, JsonObject data)
    {
        var now = Now;
        if (!mount.Secrets.TryGetValue(path, out var secret))
        {
            secret = mount.Secrets[path] = new KvSecret { CreatedAt = now, OldestVersion = 0 };
        }
        var version = secret.CurrentVersion + 1;
        secret.Versions[version] = new KvVersion { Version = version, Data = data, CreatedAt = now };
        secret.CurrentVersion = version;
        secret.UpdatedAt = now;
        var keep = secret.MaxVersions > 0 ? secret.MaxVersions : mount.MaxVersions > 0 ? mount.MaxVersions : 10;
        while (secret.Versions.Count > keep)
        {
            secret.Versions.Remove(secret.Versions.Keys.First());
        }
        secret.OldestVersion = secret.Versions.Keys.First();
        return secret;
    }

    private static JsonObject VersionMetadata(KvSecret secret, KvVersion version) => new()
    {
        ["created_time"] = Formats.Time(version.CreatedAt),
        ["custom_metadata"] = secret.CustomMetadata?.DeepClone(),
        ["deletion_time"] = version.DeletedAt is { } deleted ? Formats.Time(deleted) : "",
        ["destroyed"] = version.Destroyed,
        ["version"] = version.Version,
    };

    private VaultResult Kv(VaultRequest r, NamespaceState ns, KvMount mount, string mountName, string operation, string key, string aclPath)
    {
        key = key.TrimEnd('/');
        var isList = r.Method == "LIST" || (r.Method == "GET" && r.Query.TryGetValue("list", out var list) && list == "true");
        switch (operation)
        {
            case "config" when r.Method == "GET":
                Authorize(r, ns, aclPath, "read");
                return Envelope(new JsonObject { ["cas_required"] = mount.CasRequired, ["delete_version_after"] = "0s", ["max_versions"] = mount.MaxVersions });
            case "config" when r.Method is "POST" or "PUT":
                {
                    // vault-plugin-secrets-kv path_config.go, pathConfigWrite: an update-only path; fields absent from
                    // the body keep their values; it answers nil (204). delete_version_after is accepted and not modelled.
                    Authorize(r, ns, aclPath, "update");
                    if (r.Body?["max_versions"] is { } max)
                    {
                        mount.MaxVersions = (int)(Formats.WeakInt(max) ?? throw new VaultErrorException(VaultResult.BadRequest("error converting input for field \"max_versions\"")));
                    }
                    if (r.Body?["cas_required"] is { } required)
                    {
                        mount.CasRequired = Formats.WeakBool(required) ?? throw new VaultErrorException(VaultResult.BadRequest("error converting input for field \"cas_required\""));
                    }
                    return VaultResult.NoContent;
                }
            case "metadata" when isList:
                {
                    Authorize(r, ns, aclPath.TrimEnd('/') + "/", "list");
                    var prefix = key.Length == 0 ? "" : key + "/";
                    var keys = new SortedSet<string>(StringComparer.Ordinal);
                    foreach (var name in mount.Secrets.Keys)
                    {
                        if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length == prefix.Length)
                        {
                            continue;
                        }
                        var rest = name[prefix.Length..];
                        var slash = rest.IndexOf('/');
                        keys.Add(slash < 0 ? rest : rest[..(slash + 1)]);
                    }
                    return keys.Count == 0 ? VaultResult.Error(404) : Envelope(new JsonObject { ["keys"] = Formats.Strings(keys) });
                }
            case "metadata" when r.Method == "GET":
                {
                    Authorize(r, ns, aclPath, "read");
                    if (!mount.Secrets.TryGetValue(key, out var secret))
                    {
                        return VaultResult.Error(404);
                    }
                    var versions = new JsonObject();
                    foreach (var v in secret.Versions.Values)
                    {
                        versions[v.Version.ToString(CultureInfo.InvariantCulture)] = new JsonObject
                        {
                            ["created_time"] = Formats.Time(v.CreatedAt),
                            ["deletion_time"] = v.DeletedAt is { } d ? Formats.Time(d) : "",
                            ["destroyed"] = v.Destroyed,
                        };
                    }
                    return Envelope(new JsonObject
                    {
                        ["cas_required"] = secret.CasRequired,
                        ["created_time"] = Formats.Time(secret.CreatedAt),
                        ["current_version"] = secret.CurrentVersion,
                        ["custom_metadata"] = secret.CustomMetadata?.DeepClone(),
                        ["delete_version_after"] = "0s",
                        ["max_versions"] = secret.MaxVersions,
                        ["oldest_version"] = secret.OldestVersion,
                        ["updated_time"] = Formats.Time(secret.UpdatedAt),
                        ["versions"] = versions,
                    });
                }
            case "metadata" when r.Method is "POST" or "PUT":
                {
                    // path_metadata.go has an existence check: a new key needs create, an existing one update.
                    Authorize(r, ns, aclPath, mount.Secrets.ContainsKey(key) ? "update" : "create");
                    // Fields are decoded as sdk/framework/field_data.go does (TypeInt, TypeBool accept their string forms).
                    var maxVersions = r.Body?["max_versions"] is { } max
                        ? Formats.WeakInt(max) ?? throw new VaultErrorException(VaultResult.BadRequest("error converting input for field \"max_versions\""))
                        : (long?)null;
                    var casRequiredSetting = r.Body?["cas_required"] is { } cas
                        ? Formats.WeakBool(cas) ?? throw new VaultErrorException(VaultResult.BadRequest("error converting input for field \"cas_required\""))
                        : (bool?)null;
                    if (!mount.Secrets.TryGetValue(key, out var secret))
                    {
                        secret = mount.Secrets[key] = new KvSecret { CreatedAt = Now, UpdatedAt = Now };
                    }
                    secret.MaxVersions = (int)(maxVersions ?? secret.MaxVersions);
                    secret.CasRequired = casRequiredSetting ?? secret.CasRequired;
                    if (r.Body?["custom_metadata"] is JsonObject custom)
                    {
                        secret.CustomMetadata = custom.DeepClone().AsObject();
                    }
                    secret.UpdatedAt = Now;
                    return VaultResult.NoContent;
                }
            case "metadata" when r.Method == "DELETE":
                Authorize(r, ns, aclPath, "delete");
                mount.Secrets.Remove(key);
                return VaultResult.NoContent;
            case "data" when r.Method == "GET" && !isList:
                {
                    Authorize(r, ns, aclPath, "read");
                    if (!mount.Secrets.TryGetValue(key, out var secret) || secret.CurrentVersion == 0)
                    {
                        return VaultResult.Error(404);
                    }
                    var requested = r.Query.TryGetValue("version", out var vtext) && int.TryParse(vtext, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                        ? n : secret.CurrentVersion;
                    if (r.Query.ContainsKey("version") && vtext is { Length: > 0 } && !int.TryParse(vtext, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    {
                        return VaultResult.BadRequest("version must be a non-negative integer");
                    }
                    if (!secret.Versions.TryGetValue(requested, out var version))
                    {
                        return VaultResult.Error(404);
                    }
                    var metadata = VersionMetadata(secret, version);
                    if (version.DeletedAt is not null || version.Destroyed)
                    {
                        // Vault answers a deleted or destroyed version with 404 and the version's metadata.
                        var envelope = Envelope(new JsonObject { ["data"] = null, ["metadata"] = metadata });
                        return envelope with { Status = 404 };
                    }
                    return Envelope(new JsonObject { ["data"] = version.Data.DeepClone(), ["metadata"] = metadata });
                }
            case "data" when r.Method is "POST" or "PUT":
                {
                    // vault-plugin-secrets-kv path_data.go, pathDataWrite: "no data provided" and every
                    // validateCheckAndSetOption failure are logical.ErrInvalidRequest (HTTP 400, {"errors":[text]}); cas must
                    // equal the key's current_version, which is 0 while the key has none (cas=0: only if absent); the
                    // mount's config or the key's metadata can make cas required.
                    Authorize(r, ns, aclPath, mount.Secrets.ContainsKey(key) ? "update" : "create");
                    if (key.Length == 0)
                    {
                        return VaultResult.BadRequest("missing path");
                    }
                    if (r.Body?["data"] is not JsonObject data)
                    {
                        return VaultResult.BadRequest("no data provided");
                    }
                    mount.Secrets.TryGetValue(key, out var existing);
                    var casRequired = mount.CasRequired || existing?.CasRequired == true;
                    // vault-plugin-secrets-kv path_data.go, validateCheckAndSetOption: options.cas goes through
                    // mapstructure.WeakDecode into an int, so "1" and 1.0 are 1; what does not decode is a 400.
                    var options = r.Body["options"] switch
                    {
                        null => null,
                        JsonObject o => o,
                        _ => throw new VaultErrorException(VaultResult.BadRequest("error converting input for field \"options\"")),
                    };
                    if (options is null || !options.ContainsKey("cas"))
                    {
                        if (casRequired)
                        {
                            return VaultResult.BadRequest("check-and-set parameter required for this call");
                        }
                    }
                    else if (Formats.WeakInt(options["cas"]) is not { } cas)
                    {
                        return VaultResult.BadRequest("error parsing check-and-set parameter");
                    }
                    else if (cas != (existing?.CurrentVersion ?? 0))
                    {
                        return VaultResult.BadRequest("check-and-set parameter did not match the current version");
                    }
                    var secret = KvPut(mount, key, data.DeepClone().AsObject());
                    return Envelope(VersionMetadata(secret, secret.Versions[secret.CurrentVersion]));
                }
            case "data" when r.Method == "DELETE":
                {
                    Authorize(r, ns, aclPath, "delete");
                    if (mount.Secrets.TryGetValue(key, out var secret) && secret.Versions.TryGetValue(secret.CurrentVersion, out var current)
                        && current.DeletedAt is null && !current.Destroyed)
                    {
                        current.DeletedAt = Now;
                    }
                    return VaultResult.NoContent;
                }
            case "delete" or "undelete" or "destroy" when r.Method is "POST" or "PUT":
                {
                    Authorize(r, ns, aclPath, "update");
                    var numbers = r.Body?["versions"] is JsonArray array ? array.Select(v => v!.GetValue<int>()).ToArray() : [];
                    if (numbers.Length == 0)
                    {
                        return VaultResult.BadRequest("no version number provided");
                    }
                    if (mount.Secrets.TryGetValue(key, out var secret))
                    {
                        foreach (var number in numbers)
                        {
                            if (!secret.Versions.TryGetValue(number, out var version) || version.Destroyed)
                            {
                                continue;
                            }
                            switch (operation)
                            {
                                case "delete":
                                    version.DeletedAt ??= Now;
                                    break;
                                case "undelete":
                                    version.DeletedAt = null;
                                    break;
                                default:
                                    version.Destroyed = true;
                                    version.Data.Clear();
                                    break;
                            }
                        }
                    }
                    return VaultResult.NoContent;
                }
        }
        return VaultResult.Error(405, "unsupported operation");
    }
}
