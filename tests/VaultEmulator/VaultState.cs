using System.Globalization;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>One HTTP call as the emulator sees it. Path is without "/v1/"; Method is upper case (LIST included).</summary>
public sealed record VaultRequest(string Method, string Path, string Namespace, string? Token, JsonObject? Body, IReadOnlyDictionary<string, string> Query)
{
    public string? Param(string name) =>
        Body?[name] is { } node ? node.ToString() : Query.TryGetValue(name, out var q) ? q : null;
}

/// <summary>
/// The emulated Vault: namespaces, policies, tokens, KV v2 mounts, database/AWS engines and leases.
/// One lock guards everything; this is a test double, not a server built for load.
/// </summary>
public sealed class VaultState(TimeProvider time, string rootToken)
{
    /// <summary>Vault's system default and max lease TTL (768h).</summary>
    public const long SystemMaxTtl = 768 * 3600;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, NamespaceState> _namespaces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TokenEntry> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LeaseEntry> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _logins = new(StringComparer.Ordinal);
    private readonly string _clusterId = Formats.Uuid();

    public TimeProvider Time { get; } = time;

    public DateTimeOffset Now => Time.GetUtcNow();

    public string RootToken { get; } = rootToken;

    /// <summary>Set by the fault switches: every call but sys/health answers 503 "Vault is sealed".</summary>
    public bool Sealed { get; set; }

    /// <summary>Set by the fault switches: renew-self answers 403 as if the token's renewal was refused.</summary>
    public bool RenewSelfRefused { get; set; }

    public void Initialize()
    {
        lock (_lock)
        {
            GetOrAddNamespace("");
            _tokens[RootToken] = new TokenEntry
            {
                Id = RootToken, Accessor = Formats.RandomId(24), Namespace = "", Policies = ["root"],
                DisplayName = "root", Path = "auth/token/root", CreatedAt = Now, Renewable = false,
            };
        }
    }

    public void ApplySeed(JsonObject seed)
    {
        lock (_lock)
        {
            Seed.Apply(this, seed);
        }
    }

    public NamespaceState GetOrAddNamespace(string name)
    {
        if (!_namespaces.TryGetValue(name, out var ns))
        {
            ns = _namespaces[name] = new NamespaceState(name);
        }
        return ns;
    }

    public IReadOnlyDictionary<string, int> LoginCounts()
    {
        lock (_lock)
        {
            return new Dictionary<string, int>(_logins);
        }
    }

    public JsonArray DescribeLeases()
    {
        lock (_lock)
        {
            var now = Now;
            var array = new JsonArray();
            foreach (var lease in _leases.Values)
            {
                array.Add(new JsonObject
                {
                    ["lease_id"] = lease.Id,
                    ["credential"] = lease.Credential,
                    ["live"] = IsLive(lease, now),
                    ["revoked"] = lease.Revoked,
                    ["expire_time"] = Formats.Time(lease.ExpireAt),
                });
            }
            return array;
        }
    }

    public VaultResult Handle(VaultRequest request)
    {
        lock (_lock)
        {
            try
            {
                return Dispatch(request);
            }
            catch (VaultErrorException ex)
            {
                return ex.Result;
            }
        }
    }

    public VaultResult Health(IReadOnlyDictionary<string, string> query)
    {
        int Code(string name, int fallback) =>
            query.TryGetValue(name, out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var code) ? code : fallback;
        var body = new JsonObject
        {
            ["initialized"] = true,
            ["sealed"] = Sealed,
            ["standby"] = false,
            ["performance_standby"] = false,
            ["replication_performance_mode"] = "disabled",
            ["replication_dr_mode"] = "disabled",
            ["server_time_utc"] = Now.ToUnixTimeSeconds(),
            ["version"] = "1.15.6",
            ["enterprise"] = false,
        };
        if (!Sealed)
        {
            body["cluster_name"] = "vault-cluster-emulator";
            body["cluster_id"] = _clusterId;
        }
        return new VaultResult(Sealed ? Code("sealedcode", 503) : Code("activecode", 200), body);
    }

    // ---- dispatch ------------------------------------------------------------------------------

    private VaultResult Dispatch(VaultRequest r)
    {
        var path = r.Path.TrimStart('/');
        if (path == "sys/seal-status")
        {
            return new VaultResult(200, new JsonObject
            {
                ["type"] = "shamir", ["initialized"] = true, ["sealed"] = Sealed, ["t"] = 1, ["n"] = 1, ["progress"] = 0,
                ["nonce"] = "", ["version"] = "1.15.6", ["migration"] = false, ["recovery_seal"] = false, ["storage_type"] = "inmem",
            });
        }
        if (Sealed)
        {
            throw new VaultErrorException(VaultResult.Error(503, "Vault is sealed"));
        }
        if (!_namespaces.TryGetValue(r.Namespace, out var ns))
        {
            throw new VaultErrorException(VaultResult.Error(404, $"no handler for route \"{r.Namespace}/{path}\". route entry not found."));
        }
        var segments = path.Split('/');
        switch (segments)
        {
            case ["auth", "approle", "login"]:
                return RequireWrite(r, () => LoginAppRole(ns, r));
            case ["auth", "kubernetes", "login"]:
                return RequireWrite(r, () => LoginKubernetes(ns, r));
            case ["auth", "jwt", "login"]:
                return RequireWrite(r, () => LoginJwt(ns, r));
            case ["auth", "token", "lookup-self"]:
                {
                    var token = Authorize(r, ns, path, "read");
                    return Envelope(TokenLookupData(token));
                }
            case ["auth", "token", "renew-self"]:
                return RequireWrite(r, () => RenewSelf(r, ns, path));
            case ["sys", "leases", "renew"] or ["sys", "renew"]:
                return RequireWrite(r, () => RenewLease(r, ns, path));
            case ["sys", "leases", "revoke"] or ["sys", "revoke"]:
                return RequireWrite(r, () => RevokeLease(r, ns, path, r.Param("lease_id")));
            case ["sys", "leases", "revoke", ..]:
                return RequireWrite(r, () => RevokeLease(r, ns, "sys/leases/revoke", string.Join('/', segments[3..])));
            case ["sys", "leases", "lookup"]:
                return RequireWrite(r, () => LookupLease(r, ns, path));
            case ["database", "creds", var role] when r.Method is "GET" or "POST" or "PUT":
                Authorize(r, ns, path, r.Method == "GET" ? "read" : "update");
                return IssueDatabase(r, ns, role);
            case ["aws", "creds" or "sts", var role] when r.Method is "GET" or "POST" or "PUT":
                Authorize(r, ns, path, r.Method == "GET" ? "read" : "update");
                return IssueAws(r, ns, role, segments[1] == "sts");
        }
        if (segments.Length >= 2 && ns.KvMounts.TryGetValue(segments[0], out var mount))
        {
            return Kv(r, ns, mount, segments[0], segments[1], string.Join('/', segments[2..]), path);
        }
        throw new VaultErrorException(VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found."));
    }

    private static VaultResult RequireWrite(VaultRequest r, Func<VaultResult> handler) =>
        r.Method is "POST" or "PUT" ? handler() : VaultResult.Error(405, "unsupported operation");

    // ---- tokens and ACL ------------------------------------------------------------------------

    public TokenEntry CreateToken(string ns, string? id, string[] policies, long ttl, long explicitMaxTtl, long period, bool renewable,
        string displayName, string path, Dictionary<string, string> meta)
    {
        var now = Now;
        var maxTtl = explicitMaxTtl > 0 ? Math.Min(explicitMaxTtl, SystemMaxTtl) : SystemMaxTtl;
        var effectiveTtl = period > 0 ? period : Math.Min(ttl > 0 ? ttl : SystemMaxTtl, maxTtl);
        var isRoot = policies.Contains("root");
        var token = new TokenEntry
        {
            Id = id ?? "hvs." + Formats.RandomId(24),
            Accessor = Formats.RandomId(24),
            Namespace = ns,
            Policies = isRoot ? ["root"] : [.. policies.Append("default").Distinct().Order(StringComparer.Ordinal)],
            DisplayName = displayName,
            Path = path,
            CreatedAt = now,
            CreationTtl = isRoot && ttl == 0 ? 0 : effectiveTtl,
            Period = period,
            ExpireAt = isRoot && ttl == 0 ? null : now.AddSeconds(effectiveTtl),
            MaxExpireAt = period > 0 || (isRoot && ttl == 0) ? null : now.AddSeconds(maxTtl),
            Renewable = renewable && !(isRoot && ttl == 0),
            Meta = meta,
            EntityId = isRoot ? "" : Formats.Uuid(),
        };
        _tokens[token.Id] = token;
        return token;
    }

    private TokenEntry Authorize(VaultRequest r, NamespaceState ns, string aclPath, string capability)
    {
        if (r.Token is null || !_tokens.TryGetValue(r.Token, out var token) || !token.IsLive(Now))
        {
            throw new VaultErrorException(VaultResult.PermissionDenied());
        }
        var inScope = token.Namespace.Length == 0 || ns.Name == token.Namespace || ns.Name.StartsWith(token.Namespace + "/", StringComparison.Ordinal);
        if (!inScope)
        {
            throw new VaultErrorException(VaultResult.PermissionDenied());
        }
        if (token.Policies.Contains("root"))
        {
            return token;
        }
        // A token of a parent namespace sees the child's paths under the child's name.
        var relative = ns.Name == token.Namespace ? "" : ns.Name[(token.Namespace.Length == 0 ? 0 : token.Namespace.Length + 1)..] + "/";
        var home = _namespaces[token.Namespace];
        var rules = token.Policies.SelectMany(p => p == "default" ? Acl.DefaultPolicy : home.Policies.GetValueOrDefault(p) ?? []);
        if (!Acl.Allows(rules, relative + aclPath, capability))
        {
            throw new VaultErrorException(VaultResult.PermissionDenied());
        }
        return token;
    }

    private JsonObject TokenLookupData(TokenEntry token)
    {
        var now = Now;
        var ttl = token.ExpireAt is { } expire ? Math.Max(0, (long)(expire - now).TotalSeconds) : 0;
        return new JsonObject
        {
            ["accessor"] = token.Accessor,
            ["creation_time"] = token.CreatedAt.ToUnixTimeSeconds(),
            ["creation_ttl"] = token.CreationTtl,
            ["display_name"] = token.DisplayName,
            ["entity_id"] = token.EntityId,
            ["expire_time"] = token.ExpireAt is { } e ? Formats.Time(e) : null,
            ["explicit_max_ttl"] = 0,
            ["id"] = token.Id,
            ["issue_time"] = Formats.Time(token.CreatedAt),
            ["meta"] = token.Meta.Count == 0 ? null : new JsonObject(token.Meta.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["namespace_path"] = token.Namespace.Length == 0 ? "" : token.Namespace + "/",
            ["num_uses"] = 0,
            ["orphan"] = true,
            ["path"] = token.Path,
            ["period"] = token.Period == 0 ? null : token.Period,
            ["policies"] = Formats.Strings(token.Policies),
            ["renewable"] = token.Renewable,
            ["ttl"] = ttl,
            ["type"] = "service",
        };
    }

    private static JsonObject AuthBlock(TokenEntry token, long leaseDuration) => new()
    {
        ["client_token"] = token.Id,
        ["accessor"] = token.Accessor,
        ["policies"] = Formats.Strings(token.Policies),
        ["token_policies"] = Formats.Strings(token.Policies),
        ["identity_policies"] = null,
        ["metadata"] = token.Meta.Count == 0 ? null : new JsonObject(token.Meta.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["lease_duration"] = leaseDuration,
        ["renewable"] = token.Renewable,
        ["entity_id"] = token.EntityId,
        ["token_type"] = "service",
        ["orphan"] = true,
        ["mfa_requirement"] = null,
        ["num_uses"] = 0,
    };

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

    private VaultResult Login(NamespaceState ns, string method, AuthRole role, Dictionary<string, string> meta, string displayName)
    {
        var token = CreateToken(ns.Name, null, role.Policies, role.TokenTtl, role.TokenMaxTtl, role.TokenPeriod, renewable: true,
            $"{method}-{displayName}", $"auth/{method}/login", meta);
        _logins[method] = _logins.GetValueOrDefault(method) + 1;
        return Envelope(null, auth: AuthBlock(token, token.CreationTtl));
    }

    private VaultResult LoginAppRole(NamespaceState ns, VaultRequest r)
    {
        var roleId = r.Param("role_id");
        if (string.IsNullOrEmpty(roleId))
        {
            return VaultResult.BadRequest("missing role_id");
        }
        var role = ns.AppRoles.Values.FirstOrDefault(x => x.RoleId == roleId);
        var secretId = r.Param("secret_id");
        if (role is null || secretId is null || !role.SecretIds.Contains(secretId))
        {
            return VaultResult.BadRequest("invalid role or secret ID");
        }
        return Login(ns, "approle", role, new() { ["role_name"] = role.Name }, role.Name);
    }

    private VaultResult LoginKubernetes(NamespaceState ns, VaultRequest r)
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
        if (!ns.KubernetesRoles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"invalid role name \"{roleName}\"");
        }
        var claims = JwtVerifier.Verify(jwt, ns.KubernetesPemKeys, Now);
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
        return Login(ns, "kubernetes", role, new()
        {
            ["role"] = role.Name,
            ["service_account_name"] = saName,
            ["service_account_namespace"] = saNamespace,
        }, saNamespace + "-" + saName);
    }

    private VaultResult LoginJwt(NamespaceState ns, VaultRequest r)
    {
        var roleName = r.Param("role");
        var jwt = r.Param("jwt");
        if (string.IsNullOrEmpty(jwt))
        {
            return VaultResult.BadRequest("missing token");
        }
        if (string.IsNullOrEmpty(roleName) || !ns.JwtRoles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"role \"{roleName}\" could not be found");
        }
        var claims = JwtVerifier.Verify(jwt, ns.JwtValidationKeys, Now);
        if (claims is null)
        {
            return VaultResult.BadRequest("error validating token: invalid signature or expired token");
        }
        if (ns.JwtBoundIssuer is { } issuer && claims["iss"]?.GetValue<string>() != issuer)
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
        return Login(ns, "jwt", role, new() { ["role"] = role.Name }, user);
    }

    // ---- leases --------------------------------------------------------------------------------

    private bool IsLive(LeaseEntry lease, DateTimeOffset now) =>
        !lease.Revoked && now < lease.ExpireAt && (!_tokens.TryGetValue(lease.TokenId, out var token) || token.IsLive(now));

    private LeaseEntry NewLease(NamespaceState ns, string path, TokenEntry token, long ttl, long maxTtl, bool renewable, string credential)
    {
        var now = Now;
        maxTtl = maxTtl > 0 ? Math.Min(maxTtl, SystemMaxTtl) : SystemMaxTtl;
        ttl = Math.Min(ttl > 0 ? ttl : SystemMaxTtl, maxTtl);
        var lease = new LeaseEntry
        {
            Id = path + "/" + Formats.RandomId(24),
            Namespace = ns.Name,
            IssuedAt = now,
            ExpireAt = now.AddSeconds(ttl),
            MaxExpireAt = now.AddSeconds(maxTtl),
            DefaultTtl = ttl,
            Renewable = renewable,
            TokenId = token.Id,
            Credential = credential,
        };
        _leases[lease.Id] = lease;
        return lease;
    }

    private VaultResult IssueDatabase(VaultRequest r, NamespaceState ns, string roleName)
    {
        if (!ns.DatabaseRoles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"unknown role: {roleName}");
        }
        var token = _tokens[r.Token!];
        var username = $"v-{token.DisplayName.Replace('/', '-')}-{roleName}-{Formats.RandomId(20)}-{Now.ToUnixTimeSeconds()}";
        var lease = NewLease(ns, $"database/creds/{roleName}", token, role.DefaultTtl, role.MaxTtl, renewable: true, username);
        return Envelope(new JsonObject { ["username"] = username, ["password"] = Formats.RandomId(20) }, lease);
    }

    private VaultResult IssueAws(VaultRequest r, NamespaceState ns, string roleName, bool sts)
    {
        if (!ns.AwsRoles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"Role \"{roleName}\" not found");
        }
        var token = _tokens[r.Token!];
        var stsType = role.CredentialType is "assumed_role" or "federation_token" or "session_token";
        if (sts && !stsType)
        {
            return VaultResult.BadRequest($"Can't generate STS credentials for a role of credential_type iam_user; use {role.CredentialType} roles with the creds endpoint");
        }
        var accessKey = (stsType ? "ASIA" : "AKIA") + Formats.RandomId(16).ToUpperInvariant();
        var data = new JsonObject
        {
            ["access_key"] = accessKey,
            ["secret_key"] = Formats.RandomId(40),
            ["security_token"] = stsType ? Formats.RandomId(120) : null,
            ["arn"] = stsType ? $"arn:aws:sts::123456789012:assumed-role/{roleName}/vault-{Formats.RandomId(8)}" : $"arn:aws:iam::123456789012:user/vault-{roleName}",
        };
        LeaseEntry lease;
        if (stsType)
        {
            var ttl = Formats.ParseDuration(r.Param("ttl")) ?? (role.DefaultTtl > 0 ? role.DefaultTtl : 3600);
            if (role.MaxTtl > 0 && ttl > role.MaxTtl)
            {
                return VaultResult.BadRequest($"ttl of {ttl}s exceeds the role's max_sts_ttl of {role.MaxTtl}s");
            }
            lease = NewLease(ns, $"aws/{(sts ? "sts" : "creds")}/{roleName}", token, ttl, ttl, renewable: false, accessKey);
            data["ttl"] = ttl;
        }
        else
        {
            lease = NewLease(ns, $"aws/creds/{roleName}", token, role.DefaultTtl, role.MaxTtl, renewable: true, accessKey);
        }
        return Envelope(data, lease);
    }

    private VaultResult RenewLease(VaultRequest r, NamespaceState ns, string path)
    {
        Authorize(r, ns, path, "update");
        var id = r.Param("lease_id");
        if (string.IsNullOrEmpty(id))
        {
            return VaultResult.BadRequest("lease_id must be specified");
        }
        var now = Now;
        if (!_leases.TryGetValue(id, out var lease) || lease.Namespace != ns.Name || !IsLive(lease, now))
        {
            return VaultResult.BadRequest("lease not found");
        }
        if (!lease.Renewable)
        {
            return VaultResult.BadRequest("lease is not renewable");
        }
        var requested = Formats.ParseDuration(r.Param("increment")) is > 0 and var inc ? inc : lease.DefaultTtl;
        var remaining = (long)(lease.MaxExpireAt - now).TotalSeconds;
        var ttl = Math.Min(requested, remaining);
        string[] warnings = ttl < requested
            ? [$"TTL of \"{requested}s\" exceeded the effective max_ttl of \"{remaining}s\"; TTL value is capped accordingly"]
            : [];
        lease.ExpireAt = now.AddSeconds(ttl);
        lease.LastRenewal = now;
        return Envelope(null, lease, warnings: warnings);
    }

    private VaultResult RevokeLease(VaultRequest r, NamespaceState ns, string path, string? id)
    {
        Authorize(r, ns, path, "update");
        if (string.IsNullOrEmpty(id))
        {
            return VaultResult.BadRequest("lease_id must be specified");
        }
        if (_leases.TryGetValue(id, out var lease) && lease.Namespace == ns.Name)
        {
            lease.Revoked = true;
        }
        return VaultResult.NoContent;
    }

    private VaultResult LookupLease(VaultRequest r, NamespaceState ns, string path)
    {
        Authorize(r, ns, path, "update");
        var id = r.Param("lease_id");
        var now = Now;
        if (string.IsNullOrEmpty(id) || !_leases.TryGetValue(id, out var lease) || lease.Namespace != ns.Name || !IsLive(lease, now))
        {
            return VaultResult.BadRequest("invalid lease");
        }
        return Envelope(new JsonObject
        {
            ["id"] = lease.Id,
            ["issue_time"] = Formats.Time(lease.IssuedAt),
            ["expire_time"] = Formats.Time(lease.ExpireAt),
            ["last_renewal"] = lease.LastRenewal is { } renewed ? Formats.Time(renewed) : null,
            ["renewable"] = lease.Renewable,
            ["ttl"] = (long)(lease.ExpireAt - now).TotalSeconds,
        });
    }

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
                    Authorize(r, ns, aclPath, "update");
                    if (!mount.Secrets.TryGetValue(key, out var secret))
                    {
                        secret = mount.Secrets[key] = new KvSecret { CreatedAt = Now, UpdatedAt = Now };
                    }
                    if (r.Body?["max_versions"] is JsonValue max)
                    {
                        secret.MaxVersions = max.GetValue<int>();
                    }
                    if (r.Body?["cas_required"] is JsonValue cas)
                    {
                        secret.CasRequired = cas.GetValue<bool>();
                    }
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
                    var casNode = r.Body["options"]?["cas"];
                    if (casNode is null && casRequired)
                    {
                        return VaultResult.BadRequest("check-and-set parameter required for this call");
                    }
                    if (casNode is not null && casNode.GetValue<int>() != (existing?.CurrentVersion ?? 0))
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

    // ---- envelope ------------------------------------------------------------------------------

    private static VaultResult Envelope(JsonObject? data, LeaseEntry? lease = null, JsonObject? auth = null, string[]? warnings = null) =>
        new(200, new JsonObject
        {
            ["request_id"] = Formats.Uuid(),
            ["lease_id"] = lease?.Id ?? "",
            ["renewable"] = lease?.Renewable ?? false,
            ["lease_duration"] = lease is null ? 0 : (long)Math.Round((lease.ExpireAt - (lease.LastRenewal ?? lease.IssuedAt)).TotalSeconds),
            ["data"] = data,
            ["wrap_info"] = null,
            ["warnings"] = warnings is { Length: > 0 } ? Formats.Strings(warnings) : null,
            ["auth"] = auth,
        });
}
