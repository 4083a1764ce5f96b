using System.Text.Json.Serialization;

namespace SecretsBroker.Broker.Backends.Aws;

// Wire shapes of the Secrets Manager JSON 1.1 protocol (member names as AWS spells them). Timestamps
// are epoch seconds as JSON numbers; blobs are base64 strings, which is how System.Text.Json writes byte[].

public sealed class GetSecretValueRequest
{
    public required string SecretId { get; init; }

    public string? VersionId { get; init; }

    public string? VersionStage { get; init; }
}

public sealed class GetSecretValueResponse
{
    public string? ARN { get; init; }

    public string? Name { get; init; }

    public string? VersionId { get; init; }

    public string? SecretString { get; init; }

    public byte[]? SecretBinary { get; init; }

    public List<string>? VersionStages { get; init; }

    public double? CreatedDate { get; init; }
}

public sealed class BatchGetSecretValueRequest
{
    public List<string>? SecretIdList { get; init; }

    public List<SecretsManagerFilter>? Filters { get; init; }

    public int? MaxResults { get; init; }

    public string? NextToken { get; init; }
}

public sealed class BatchGetSecretValueResponse
{
    public List<GetSecretValueResponse>? SecretValues { get; init; }

    public List<BatchGetSecretValueError>? Errors { get; init; }

    public string? NextToken { get; init; }
}

/// <summary>A per-item failure of BatchGetSecretValue. Its message is not kept: it can quote the secret id.</summary>
public sealed class BatchGetSecretValueError
{
    public string? SecretId { get; init; }

    public string? ErrorCode { get; init; }
}

public sealed class SecretsManagerFilter
{
    /// <summary>description, name, tag-key, tag-value, primary-region, owning-service or all.</summary>
    public required string Key { get; init; }

    public required List<string> Values { get; init; }
}

public sealed class DescribeSecretRequest
{
    public required string SecretId { get; init; }
}

public sealed class DescribeSecretResponse
{
    public string? ARN { get; init; }

    public string? Name { get; init; }

    public string? Description { get; init; }

    public bool? RotationEnabled { get; init; }

    public double? CreatedDate { get; init; }

    public double? LastChangedDate { get; init; }

    public double? LastAccessedDate { get; init; }

    public double? LastRotatedDate { get; init; }

    public double? DeletedDate { get; init; }

    public Dictionary<string, List<string>>? VersionIdsToStages { get; init; }
}

public sealed class ListSecretsRequest
{
    public List<SecretsManagerFilter>? Filters { get; init; }

    public int? MaxResults { get; init; }

    public string? NextToken { get; init; }

    public bool? IncludePlannedDeletion { get; init; }

    /// <summary>asc or desc (by creation date).</summary>
    public string? SortOrder { get; init; }
}

public sealed class ListSecretsResponse
{
    public List<SecretListEntry>? SecretList { get; init; }

    public string? NextToken { get; init; }
}

public sealed class SecretListEntry
{
    public string? ARN { get; init; }

    public string? Name { get; init; }

    public double? CreatedDate { get; init; }

    public double? LastChangedDate { get; init; }

    public Dictionary<string, List<string>>? SecretVersionsToStages { get; init; }
}

// The writes are records so the client can fill in ClientRequestToken (idempotencyToken in the service
// model) with `with`, once per logical write: every retry then sends the same token.

public sealed record CreateSecretRequest
{
    public required string Name { get; init; }

    public string? ClientRequestToken { get; init; }

    public string? Description { get; init; }

    public string? KmsKeyId { get; init; }

    public string? SecretString { get; init; }

    public byte[]? SecretBinary { get; init; }
}

public sealed record PutSecretValueRequest
{
    public required string SecretId { get; init; }

    public string? ClientRequestToken { get; init; }

    public string? SecretString { get; init; }

    public byte[]? SecretBinary { get; init; }

    public List<string>? VersionStages { get; init; }
}

public sealed record UpdateSecretRequest
{
    public required string SecretId { get; init; }

    public string? ClientRequestToken { get; init; }

    public string? Description { get; init; }

    public string? KmsKeyId { get; init; }

    public string? SecretString { get; init; }

    public byte[]? SecretBinary { get; init; }
}

public sealed record RotateSecretRequest
{
    public required string SecretId { get; init; }

    public string? ClientRequestToken { get; init; }

    public string? RotationLambdaARN { get; init; }

    public RotationRules? RotationRules { get; init; }

    public bool? RotateImmediately { get; init; }
}

public sealed class RotationRules
{
    public long? AutomaticallyAfterDays { get; init; }

    public string? Duration { get; init; }

    public string? ScheduleExpression { get; init; }
}

/// <summary>What CreateSecret, PutSecretValue, UpdateSecret and RotateSecret answer (UpdateSecret: VersionId only when it made a version).</summary>
public sealed class SecretWriteResponse
{
    public string? ARN { get; init; }

    public string? Name { get; init; }

    public string? VersionId { get; init; }

    public List<string>? VersionStages { get; init; }
}

/// <summary>The JSON 1.1 error body. Only the type is used; the message can quote request data.</summary>
public sealed class SecretsManagerErrorBody
{
    [JsonPropertyName("__type")]
    public string? Type { get; init; }

    [JsonPropertyName("code")]
    public string? Code { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(GetSecretValueRequest))]
[JsonSerializable(typeof(GetSecretValueResponse))]
[JsonSerializable(typeof(BatchGetSecretValueRequest))]
[JsonSerializable(typeof(BatchGetSecretValueResponse))]
[JsonSerializable(typeof(DescribeSecretRequest))]
[JsonSerializable(typeof(DescribeSecretResponse))]
[JsonSerializable(typeof(ListSecretsRequest))]
[JsonSerializable(typeof(ListSecretsResponse))]
[JsonSerializable(typeof(CreateSecretRequest))]
[JsonSerializable(typeof(PutSecretValueRequest))]
[JsonSerializable(typeof(UpdateSecretRequest))]
[JsonSerializable(typeof(RotateSecretRequest))]
[JsonSerializable(typeof(SecretWriteResponse))]
[JsonSerializable(typeof(UpdateSecretVersionStageRequest))]
[JsonSerializable(typeof(UpdateSecretVersionStageResponse))]
[JsonSerializable(typeof(SecretsManagerErrorBody))]
internal sealed partial class SecretsManagerJsonContext : JsonSerializerContext;
