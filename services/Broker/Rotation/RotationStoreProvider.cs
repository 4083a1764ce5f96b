using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Rotation;

/// <summary>The rotation store of each mount: stages where the backend has them (aws-sm), a sibling pending record otherwise.</summary>
public sealed class RotationStoreProvider : IRotationStoreProvider
{
    public IRotationStore? StoreOf(MountedBackend mounted)
    {
        if (mounted.Capability<ISecretReading>() is not { } reader || mounted.Capability<ISecretWriter>() is not { } writer)
        {
            return null;
        }
        return mounted.Capability<ISecretStaging>() is { } staging
            ? new StagedRotationStore(reader, writer, staging)
            : new SiblingRotationStore(reader, writer);
    }
}

/// <summary>
/// aws-managed: AWS RotateSecret runs the secret's own rotation Lambda (createSecret, setSecret, testSecret, finishSecret);
/// the broker waits until the new version is AWSCURRENT and answers it. https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html
/// IAM: secretsmanager:RotateSecret and DescribeSecret (and lambda:InvokeFunction for AWS on the secret's Lambda).
/// </summary>
public sealed class AwsManagedRotation(Microsoft.Extensions.Options.IOptions<RotationEngineOptions> options, TimeProvider time) : IAwsManagedRotation
{
    private static readonly TimeSpan PollStep = TimeSpan.FromSeconds(1);

    public async Task<RotationResult> RotateAsync(MountedBackend mounted, string name, CancellationToken cancellationToken)
    {
        if (mounted.Capability<ISecretStaging>() is not { } staging || mounted.Capability<ISecretReading>() is not { } reader)
        {
            throw new Core.BrokerException(Core.BrokerErrorKind.FailedPrecondition, "aws-managed rotation works on aws-sm mounts only");
        }
        var before = (await staging.GetVersionStagesAsync(name, cancellationToken).ConfigureAwait(false))
            .FirstOrDefault(v => v.Value.Contains(StagedRotationStore.Current)).Key ?? "";
        var version = await staging.StartManagedRotationAsync(name, Guid.NewGuid().ToString("D"), cancellationToken).ConfigureAwait(false);
        var deadline = time.GetUtcNow() + options.Value.AwsManagedTimeout;
        while (true)
        {
            var stages = await staging.GetVersionStagesAsync(name, cancellationToken).ConfigureAwait(false);
            if (stages.TryGetValue(version, out var labels) && labels.Contains(StagedRotationStore.Current))
            {
                break;
            }
            if (time.GetUtcNow() >= deadline)
            {
                throw new Core.BrokerException(Core.BrokerErrorKind.Unavailable,
                    "AWS's rotation did not make the new version current in time; the current version is untouched unless AWS finishes it later");
            }
            await Task.Delay(PollStep, time, cancellationToken).ConfigureAwait(false);
        }
        var value = await reader.GetAsync(name, new Core.VersionSelector(Version: version), cancellationToken).ConfigureAwait(false);
        return new RotationResult(version, before, value.CreatedAt, RotationRule.AwsManagedStrategyName);
    }
}
