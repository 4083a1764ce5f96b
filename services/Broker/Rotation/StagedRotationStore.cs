using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Rotation state in aws-sm's own stages, as AWS's rotation leaves it for every other consumer: the pending value is a
/// version staged AWSPENDING (its ClientRequestToken is the rotation id, so a retried write creates no second version);
/// promotion moves AWSCURRENT to it (AWS moves AWSPREVIOUS to the version it left); clearing removes AWSPENDING.
/// https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html
/// </summary>
public sealed class StagedRotationStore(ISecretReading reader, ISecretWriter writer, ISecretStaging staging) : IRotationStore
{
    public const string Current = "AWSCURRENT", Pending = "AWSPENDING", Previous = "AWSPREVIOUS";

    public Task<SecretValue> ReadCurrentAsync(string name, CancellationToken cancellationToken) =>
        reader.GetAsync(name, new VersionSelector(Stage: Current), cancellationToken);

    public async Task<PendingRotation?> ReadPendingAsync(string name, CancellationToken cancellationToken)
    {
        var stages = await staging.GetVersionStagesAsync(name, cancellationToken).ConfigureAwait(false);
        var current = stages.FirstOrDefault(v => v.Value.Contains(Current)).Key;
        var pending = stages.FirstOrDefault(v => v.Value.Contains(Pending)).Key;
        if (pending is null || current is null)
        {
            return null;
        }
        // AWS records no base version: the pending version continues from whatever is current (as AWS's rotation functions
        // do). AWSPENDING on the current version is a rotation promoted before a crash, with only the clean-up left: its
        // base is the version AWSCURRENT left (AWSPREVIOUS), so resuming just clears AWSPENDING.
        var baseVersion = pending != current ? current : stages.FirstOrDefault(v => v.Value.Contains(Previous)).Key ?? "";
        var value = await reader.GetAsync(name, new VersionSelector(Version: pending), cancellationToken).ConfigureAwait(false);
        return value.Data is null ? null : new PendingRotation(pending, baseVersion, value.Data, value.CreatedAt ?? DateTimeOffset.UnixEpoch);
    }

    public async Task WritePendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken) =>
        await writer.WriteVersionAsync(name, new SecretWrite { Data = pending.Data, IdempotencyToken = pending.RotationId, Stages = [Pending] }, cancellationToken)
            .ConfigureAwait(false);

    public async Task<SecretValue> PromoteAsync(string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        var stages = await staging.GetVersionStagesAsync(name, cancellationToken).ConfigureAwait(false);
        var current = stages.FirstOrDefault(v => v.Value.Contains(Current)).Key;
        if (current != pending.RotationId)
        {
            if (current != pending.BaseVersion)
            {
                throw CheckAndSet.Mismatch(current);
            }
            await staging.MoveStageAsync(name, Current, pending.RotationId, current, cancellationToken).ConfigureAwait(false);
        }
        return await reader.GetAsync(name, new VersionSelector(Version: pending.RotationId), cancellationToken).ConfigureAwait(false);
    }

    public async Task ClearPendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        var stages = await staging.GetVersionStagesAsync(name, cancellationToken).ConfigureAwait(false);
        if (stages.TryGetValue(pending.RotationId, out var labels) && labels.Contains(Pending))
        {
            await staging.MoveStageAsync(name, Pending, null, pending.RotationId, cancellationToken).ConfigureAwait(false);
        }
    }
}
