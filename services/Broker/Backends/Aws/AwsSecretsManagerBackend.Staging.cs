namespace SecretsBroker.Broker.Backends.Aws;

// Staging labels for broker-driven rotations (AWSPENDING / AWSCURRENT / AWSPREVIOUS as AWS's own rotation leaves them) and
// AWS's managed rotation. IAM: secretsmanager:DescribeSecret, UpdateSecretVersionStage, RotateSecret (docs/rotation.md).
public sealed partial class AwsSecretsManagerBackend
{
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVersionStagesAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = name }, cancellationToken).ConfigureAwait(false);
            return (response.VersionIdsToStages ?? []).ToDictionary(v => v.Key, v => (IReadOnlyList<string>)v.Value, StringComparer.Ordinal);
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
    }

    public async Task MoveStageAsync(string name, string stage, string? toVersion, string? fromVersion, CancellationToken cancellationToken)
    {
        try
        {
            await client.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
            {
                SecretId = name,
                VersionStage = stage,
                MoveToVersionId = toVersion,
                RemoveFromVersionId = fromVersion,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
    }

    public async Task<string> StartManagedRotationAsync(string name, string clientRequestToken, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.RotateSecretAsync(new RotateSecretRequest { SecretId = name, ClientRequestToken = clientRequestToken, RotateImmediately = true },
                cancellationToken).ConfigureAwait(false);
            return response.VersionId ?? clientRequestToken;
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
    }
}
