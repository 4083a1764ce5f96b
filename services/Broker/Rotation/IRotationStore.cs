using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Where a broker-driven rotation keeps its state, durably, in the secret's own store: the pending value is written there
/// before anything else changes (so a new password never exists only in the broker's memory), and promoted to current
/// at the end. aws-sm uses the real AWSPENDING / AWSCURRENT / AWSPREVIOUS stages; stores without stages (vault-kv, local)
/// keep a pending record at a sibling path (docs/rotation.md, "Staged protocol").
/// </summary>
public interface IRotationStore
{
    Task<SecretValue> ReadCurrentAsync(string name, CancellationToken cancellationToken);

    /// <summary>The unfinished rotation of a secret, or null when none is recorded.</summary>
    Task<PendingRotation?> ReadPendingAsync(string name, CancellationToken cancellationToken);

    /// <summary>createSecret: records the pending value durably (idempotent for one rotation id).</summary>
    Task WritePendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken);

    /// <summary>
    /// finishSecret: makes the pending value current, only if <see cref="PendingRotation.BaseVersion"/> is still current
    /// (check-and-set; ABORTED otherwise). Returns the new current version.
    /// </summary>
    Task<SecretValue> PromoteAsync(string name, PendingRotation pending, CancellationToken cancellationToken);

    /// <summary>Marks the rotation finished or abandoned: the pending record no longer counts.</summary>
    Task ClearPendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken);
}

/// <summary>An unfinished rotation as the store records it: the new value, and the version it replaces.</summary>
public sealed record PendingRotation(string RotationId, string BaseVersion, IReadOnlyDictionary<string, string> Data, DateTimeOffset StartedAt)
{
    public override string ToString() => $"PendingRotation {{ RotationId = {RotationId}, BaseVersion = {BaseVersion}, Fields = {Data.Count} }}";
}

/// <summary>What a rotation answers: the new current version and the one it replaced.</summary>
public sealed record RotationResult(string Version, string PreviousVersion, DateTimeOffset? CreatedAt, string Strategy);
