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
public sealed partial class VaultState(TimeProvider time, string rootToken)
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

    /// <summary>
    /// Set by the fault switches: what Vault's expiration manager did with leases past their expiry.
    /// null: revoked and deleted (renewal answers "lease not found"); "pending_revocation": not revoked yet
    /// ("lease expired"); "irrevocable": revocation failed ("lease is expired and has failed previous
    /// revocation attempts"). vault/expiration.go, leaseEntry.renewable.
    /// </summary>
    public string? ExpiredLeases { get; set; }

    /// <summary>
    /// Set by the fault switches: answer a dead token as Vault before 1.17 did, 403 "permission denied" alone
    /// (vault/request_handling.go, fetchACLTokenEntryAndEntity: te == nil returned logical.ErrPermissionDenied).
    /// </summary>
    public bool TokenErrorsBefore117 { get; set; }

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
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or System.Text.Json.JsonException)
            {
                // A field of the wrong JSON type: Vault's framework refuses it as a bad request, never a 500
                // (sdk/framework/field_data.go, FieldData.Validate).
                return VaultResult.BadRequest("error converting input for a field: " + ex.GetType().Name);
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
            ["version"] = "1.17.6",
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
                ["nonce"] = "", ["version"] = "1.17.6", ["migration"] = false, ["recovery_seal"] = false, ["storage_type"] = "inmem",
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
        }
        // Mounts are found by the longest mount path that prefixes the request path (vault/router.go, MatchingMount).
        if (path.StartsWith("auth/", StringComparison.Ordinal) && ResolveMount(ns.AuthMounts.Keys, path["auth/".Length..]) is var (authPath, authRest))
        {
            return AuthMethod(r, ns, ns.AuthMounts[authPath], authPath, authRest, path);
        }
        if (ResolveMount(ns.Engines.Keys, path) is var (enginePath, engineRest))
        {
            return RouteEngine(r, ns, ns.Engines[enginePath], enginePath, engineRest, path);
        }
        if (ResolveMount(ns.KvMounts.Keys, path) is var (kvPath, kvRest) && kvRest.Length > 0)
        {
            var slash = kvRest.IndexOf('/');
            return Kv(r, ns, ns.KvMounts[kvPath], kvPath, slash < 0 ? kvRest : kvRest[..slash], slash < 0 ? "" : kvRest[(slash + 1)..], path);
        }
        throw new VaultErrorException(VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found."));
    }

    private static (string Mount, string Remainder)? ResolveMount(IEnumerable<string> mounts, string path) =>
        mounts.Where(m => path.StartsWith(m + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length)
            .Select(m => ((string, string)?)(m, path[(m.Length + 1)..])).FirstOrDefault();

    private static VaultResult RequireWrite(VaultRequest r, Func<VaultResult> handler) =>
        r.Method is "POST" or "PUT" ? handler() : VaultResult.Error(405, "unsupported operation");

    // ---- tokens and ACL ------------------------------------------------------------------------

    public TokenEntry CreateToken(string ns, string? id, string[] policies, long ttl, long explicitMaxTtl, long period, bool renewable,
        string displayName, string path, Dictionary<string, string> meta, bool noDefaultPolicy = false)
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
            Policies = isRoot ? ["root"] : [.. (noDefaultPolicy ? policies : policies.Append("default")).Distinct().Order(StringComparer.Ordinal)],
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

    /// <summary>
    /// The live token of <paramref name="r"/>, allowed <paramref name="capability"/> on <paramref name="aclPath"/>.
    /// A missing, expired or revoked token is 403 with "invalid token" as well as "permission denied"; a
    /// valid token its policies do not allow is 403 "permission denied" alone (vault/request_handling.go,
    /// checkToken; the "invalid token" error since Vault 1.17, hashicorp/vault#25953).
    /// </summary>
    private TokenEntry Authorize(VaultRequest r, NamespaceState ns, string aclPath, string capability)
    {
        if (r.Token is null || !_tokens.TryGetValue(r.Token, out var token) || !token.IsLive(Now))
        {
            throw new VaultErrorException(TokenErrorsBefore117 ? VaultResult.PermissionDenied() : VaultResult.InvalidToken());
        }
        var inScope = token.Namespace.Length == 0 || ns.Name == token.Namespace || ns.Name.StartsWith(token.Namespace + "/", StringComparison.Ordinal);
        if (!inScope)
        {
            throw new VaultErrorException(VaultResult.PolicyDenied());
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
            throw new VaultErrorException(VaultResult.PolicyDenied());
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
