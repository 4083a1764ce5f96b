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
    public string? RoleId { get; init; }
    public string[] SecretIds { get; init; } = [];
    public string[] BoundServiceAccountNames { get; init; } = [];
    public string[] BoundServiceAccountNamespaces { get; init; } = [];
    public string[] BoundAudiences { get; init; } = [];
    public string? BoundSubject { get; init; }
    public string UserClaim { get; init; } = "sub";
}

/// <summary>Everything that lives in one namespace ("" is the root namespace).</summary>
public sealed class NamespaceState(string name)
{
    public string Name { get; } = name;
    public Dictionary<string, PolicyRule[]> Policies { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, KvMount> KvMounts { get; } = new(StringComparer.Ordinal) { ["secret"] = new KvMount() };
    public Dictionary<string, DynamicRole> DatabaseRoles { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, DynamicRole> AwsRoles { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, AuthRole> AppRoles { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, AuthRole> KubernetesRoles { get; } = new(StringComparer.Ordinal);
    public List<string> KubernetesPemKeys { get; } = [];
    public Dictionary<string, AuthRole> JwtRoles { get; } = new(StringComparer.Ordinal);
    public List<string> JwtValidationKeys { get; } = [];
    public string? JwtBoundIssuer { get; set; }
}
