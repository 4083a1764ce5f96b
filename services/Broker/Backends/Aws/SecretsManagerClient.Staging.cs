namespace SecretsBroker.Broker.Backends.Aws;

// UpdateSecretVersionStage (botocore data/secretsmanager/2017-10-17/service-2.json): SecretId and VersionStage required;
// MoveToVersionId adds the label, RemoveFromVersionId takes it from the version holding it (required when another version
// holds it, else the call fails). Moving AWSCURRENT makes AWS move AWSPREVIOUS to the version it left.
public sealed partial class SecretsManagerClient
{
    public Task<UpdateSecretVersionStageResponse> UpdateSecretVersionStageAsync(UpdateSecretVersionStageRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("UpdateSecretVersionStage", request, SecretsManagerJsonContext.Default.UpdateSecretVersionStageRequest,
            SecretsManagerJsonContext.Default.UpdateSecretVersionStageResponse, cancellationToken);
}

public sealed record UpdateSecretVersionStageRequest
{
    public required string SecretId { get; init; }

    public required string VersionStage { get; init; }

    public string? RemoveFromVersionId { get; init; }

    public string? MoveToVersionId { get; init; }
}

public sealed class UpdateSecretVersionStageResponse
{
    public string? ARN { get; init; }

    public string? Name { get; init; }
}
