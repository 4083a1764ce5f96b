using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>A service token (Vault's default token type).</summary>
public sealed class TokenEntry
{
    public required string Id { get; init; }
    public required string Accessor { get; init; }
    public required string Namespace { get; init; }
    public required string[] Policies { get; init; }
    public required string DisplayName { get; init; }
    public required string Path { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public long CreationTtl { get; init; }
    public long Period { get; init; }
    public DateTimeOffset? ExpireAt { get; set; }
    public DateTimeOffset? MaxExpireAt { get; init; }
    public bool Renewable { get; init; }
    public bool Revoked { get; set; }
    public Dictionary<string, string> Meta { get; init; } = [];
    public string EntityId { get; init; } = "";

    public bool IsLive(DateTimeOffset now) => !Revoked && (ExpireAt is null || now < ExpireAt);
}

/// <summary>A lease on dynamic credentials.</summary>
public sealed class LeaseEntry
{
    public required string Id { get; init; }
    public required string Namespace { get; init; }
    public required DateTimeOffset IssuedAt { get; init; }
    public DateTimeOffset? LastRenewal { get; set; }
    public required DateTimeOffset ExpireAt { get; set; }
    public required DateTimeOffset MaxExpireAt { get; init; }
    public required long DefaultTtl { get; init; }
    public required bool Renewable { get; init; }
    public required string TokenId { get; init; }
    public required string Credential { get; init; }
    public bool Revoked { get; set; }
}

public sealed class KvVersion
{
    public required int Version { get; init; }
    public required JsonObject Data { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? DeletedAt { get; set; }
    public bool Destroyed { get; set; }
}

public sealed class KvSecret
{
    public SortedDictionary<int, KvVersion> Versions { get; } = [];
    public int CurrentVersion { get; set; }
    public int OldestVersion { get; set; }
    public int MaxVersions { get; set; }
    public bool CasRequired { get; set; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
    public JsonObject? CustomMetadata { get; set; }
}

public sealed class KvMount
{
    public int MaxVersions { get; set; } = 10;
    public bool CasRequired { get; set; }
    public SortedDictionary<string, KvSecret> Secrets { get; } = new(StringComparer.Ordinal);
}

/// <summary>A database or AWS secrets-engine role.</summary>
public sealed class DynamicRole
{
    public required string Name { get; init; }
    public long DefaultTtl { get; init; }
    public long MaxTtl { get; init; }
    public string CredentialType { get; init; } = "iam_user";
}

/// <summary>A role of the approle, kubernetes or jwt auth method.</summary>
public sealed class AuthRole
{
    public required string Name { get; init; }
    public string[] Policies { get; init; } = [];
    public long TokenTtl { get; init; }
    public long TokenMaxTtl { get; init; }
    public long TokenPeriod { get; init; }

    /// <summary>
    /// token_no_default_policy: tokens of this role do not get Vault's "default" policy, so they may not
    /// call auth/token/lookup-self or renew-self unless another policy grants it
    /// (sdk/helper/tokenutil/tokenutil.go, TokenNoDefaultPolicy).
    /// </summary>
    public bool NoDefaultPolicy { get; init; }
    public string? RoleId { get; init; }

    /// <summary>AppRole: the role's secret_id_num_uses and secret_id_ttl, the defaults of every secret_id issued for it (0: unlimited).</summary>
    public long SecretIdNumUses { get; init; }
    public long SecretIdTtl { get; init; }
    public List<SecretIdEntry> SecretIds { get; } = [];
    public string[] BoundServiceAccountNames { get; init; } = [];
    public string[] BoundServiceAccountNamespaces { get; init; } = [];
    public string[] BoundAudiences { get; init; } = [];
    public string? BoundSubject { get; init; }
    public string UserClaim { get; init; } = "sub";
}

/// <summary>An AppRole secret_id with its remaining uses (0: unlimited) and expiry, as builtin/credential/approle/validation.go stores it.</summary>
public sealed class SecretIdEntry
{
    public required string Value { get; init; }
    public required string Accessor { get; init; }
    public int NumUses { get; set; }
    public long Ttl { get; init; }
    public DateTimeOffset? ExpireAt { get; init; }
}

/// <summary>An auth method mounted at auth/&lt;path&gt;: its type (approle, kubernetes, jwt) and configuration.</summary>
public sealed class AuthMount(string type)
{
    public string Type { get; } = type;
    public Dictionary<string, AuthRole> Roles { get; } = new(StringComparer.Ordinal);
    public List<string> PemKeys { get; } = [];
    public List<string> JwtValidationKeys { get; } = [];
    public string? BoundIssuer { get; set; }
}

/// <summary>A database or aws secrets engine mounted at some path, with its roles.</summary>
public sealed class DynamicEngine(string type)
{
    public string Type { get; } = type;
    public Dictionary<string, DynamicRole> Roles { get; } = new(StringComparer.Ordinal);

    /// <summary>Keys of a transit engine (VaultState.Transit.cs).</summary>
    public Dictionary<string, TransitKey> TransitKeys { get; } = new(StringComparer.Ordinal);
}

/// <summary>Everything that lives in one namespace ("" is the root namespace).</summary>
public sealed class NamespaceState(string name)
{
    public string Name { get; } = name;
    public Dictionary<string, PolicyRule[]> Policies { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, KvMount> KvMounts { get; } = new(StringComparer.Ordinal) { ["secret"] = new KvMount() };

    /// <summary>Secrets engines of type database or aws, by mount path ("database", "aws", "db-prod", ...).</summary>
    public Dictionary<string, DynamicEngine> Engines { get; } = new(StringComparer.Ordinal);

    /// <summary>Auth methods by mount path (without "auth/"): "approle", "kubernetes", "k8s/prod", ...</summary>
    public Dictionary<string, AuthMount> AuthMounts { get; } = new(StringComparer.Ordinal);

    public DynamicEngine Engine(string path, string type)
    {
        if (!Engines.TryGetValue(path, out var engine))
        {
            engine = Engines[path] = new DynamicEngine(type);
        }
        return engine;
    }

    public AuthMount Auth(string path, string type)
    {
        if (!AuthMounts.TryGetValue(path, out var mount))
        {
            mount = AuthMounts[path] = new AuthMount(type);
        }
        return mount;
    }
}
