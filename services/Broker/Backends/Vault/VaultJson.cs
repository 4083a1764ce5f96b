using System.Text.Json;
using System.Text.Json.Serialization;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>Vault's response envelope.</summary>
public sealed class VaultEnvelope<TData>
{
    public string? RequestId { get; set; }
    public string? LeaseId { get; set; }
    public bool Renewable { get; set; }
    public long LeaseDuration { get; set; }
    public TData? Data { get; set; }
    public JsonElement? WrapInfo { get; set; }
    public string[]? Warnings { get; set; }
    public VaultAuthBlock? Auth { get; set; }
}

public sealed class VaultAuthBlock
{
    public string? ClientToken { get; set; }
    public string? Accessor { get; set; }
    public string[]? Policies { get; set; }
    public long LeaseDuration { get; set; }
    public bool Renewable { get; set; }
}

public sealed class VaultErrorBody
{
    public string[]? Errors { get; set; }
}

public sealed class KvReadData
{
    public Dictionary<string, JsonElement>? Data { get; set; }
    public KvVersionMetadata? Metadata { get; set; }
}

public sealed class KvVersionMetadata
{
    public DateTimeOffset? CreatedTime { get; set; }
    public string? DeletionTime { get; set; }
    public bool Destroyed { get; set; }
    public int Version { get; set; }
}

public sealed class KvListData
{
    public string[]? Keys { get; set; }
}

public sealed class KvMetadataData
{
    public int CurrentVersion { get; set; }
    public int OldestVersion { get; set; }
    public int MaxVersions { get; set; }
    public bool CasRequired { get; set; }
    public DateTimeOffset? CreatedTime { get; set; }
    public DateTimeOffset? UpdatedTime { get; set; }
    public Dictionary<string, KvVersionInfo>? Versions { get; set; }
}

public sealed class KvVersionInfo
{
    public DateTimeOffset? CreatedTime { get; set; }
    public string? DeletionTime { get; set; }
    public bool Destroyed { get; set; }
}

public sealed class KvWriteRequest
{
    public required IReadOnlyDictionary<string, string> Data { get; set; }
    public KvWriteOptions? Options { get; set; }
}

public sealed class KvWriteOptions
{
    public int Cas { get; set; }
}

public sealed class TokenLookupData
{
    public long Ttl { get; set; }
    public bool Renewable { get; set; }
    public string[]? Policies { get; set; }
}

public sealed class RenewSelfRequest
{
    public string? Increment { get; set; }
}

public sealed class AppRoleLoginRequest
{
    public required string RoleId { get; set; }
    public required string SecretId { get; set; }
}

public sealed class JwtLoginRequest
{
    public required string Role { get; set; }
    public required string Jwt { get; set; }
}

public sealed class LeaseRequest
{
    public required string LeaseId { get; set; }
    public long? Increment { get; set; }
}

public sealed class StsRequest
{
    public string? Ttl { get; set; }
}

public sealed class EmptyData;

/// <summary>Source-generated (de)serialization for every Vault payload the broker handles.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(VaultEnvelope<KvReadData>))]
[JsonSerializable(typeof(VaultEnvelope<KvListData>))]
[JsonSerializable(typeof(VaultEnvelope<KvMetadataData>))]
[JsonSerializable(typeof(VaultEnvelope<KvVersionMetadata>))]
[JsonSerializable(typeof(VaultEnvelope<TokenLookupData>))]
[JsonSerializable(typeof(VaultEnvelope<Dictionary<string, JsonElement>>))]
[JsonSerializable(typeof(VaultEnvelope<EmptyData>))]
[JsonSerializable(typeof(VaultErrorBody))]
[JsonSerializable(typeof(KvWriteRequest))]
[JsonSerializable(typeof(RenewSelfRequest))]
[JsonSerializable(typeof(AppRoleLoginRequest))]
[JsonSerializable(typeof(JwtLoginRequest))]
[JsonSerializable(typeof(LeaseRequest))]
[JsonSerializable(typeof(StsRequest))]
[JsonSerializable(typeof(TransitRequest))]
[JsonSerializable(typeof(VaultEnvelope<TransitData>))]
public sealed partial class VaultJsonContext : JsonSerializerContext;
