using System.Globalization;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Rotation state for stores without stages (vault-kv, writable local mounts): the pending value is a version of the
/// sibling secret <c>{name}.rotation-pending</c>, written before the target changes, holding the new fields and
/// <c>_rotation_*</c> fields (id, base version, start, state). Promotion writes the new version of the secret with
/// check-and-set on the base version; clearing writes a <c>done</c> marker without the value.
/// </summary>
public sealed class SiblingRotationStore(ISecretReading reader, ISecretWriter writer) : IRotationStore
{
    public const string Suffix = ".rotation-pending";
    private const string StateField = "_rotation_state", IdField = "_rotation_id", BaseField = "_rotation_base_version", StartedField = "_rotation_started";

    public Task<SecretValue> ReadCurrentAsync(string name, CancellationToken cancellationToken) =>
        reader.GetAsync(name, VersionSelector.Latest, cancellationToken);

    public async Task<PendingRotation?> ReadPendingAsync(string name, CancellationToken cancellationToken)
    {
        SecretValue record;
        try
        {
            record = await reader.GetAsync(name + Suffix, VersionSelector.Latest, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.NotFound)
        {
            return null;
        }
        if (record.Data is not { } data || data.GetValueOrDefault(StateField) != "pending"
            || data.GetValueOrDefault(IdField) is not { } id || data.GetValueOrDefault(BaseField) is not { } baseVersion)
        {
            return null;
        }
        var started = DateTimeOffset.TryParse(data.GetValueOrDefault(StartedField), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at : record.CreatedAt ?? DateTimeOffset.UnixEpoch;
        var fields = data.Where(kv => !kv.Key.StartsWith("_rotation_", StringComparison.Ordinal)).ToDictionary(StringComparer.Ordinal);
        return new PendingRotation(id, baseVersion, fields, started);
    }

    public async Task WritePendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        if (pending.Data.Keys.Any(k => k.StartsWith("_rotation_", StringComparison.Ordinal)))
        {
            BrokerException.ThrowFailedPrecondition("fields named _rotation_* are reserved for the rotation's pending record");
        }
        var record = new Dictionary<string, string>(pending.Data, StringComparer.Ordinal)
        {
            [StateField] = "pending",
            [IdField] = pending.RotationId,
            [BaseField] = pending.BaseVersion,
            [StartedField] = pending.StartedAt.ToString("O", CultureInfo.InvariantCulture),
        };
        await writer.WriteVersionAsync(name + Suffix, new SecretWrite { Data = record }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<SecretValue> PromoteAsync(string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        var written = await writer.WriteVersionAsync(name, new SecretWrite { Data = pending.Data, ExpectedVersion = pending.BaseVersion }, cancellationToken)
            .ConfigureAwait(false);
        return new SecretValue { Version = written.Version, CreatedAt = written.CreatedAt, Data = pending.Data };
    }

    public async Task ClearPendingAsync(string name, PendingRotation pending, CancellationToken cancellationToken) =>
        // The marker holds no value: the new password stays only in the secret's own versions.
        await writer.WriteVersionAsync(name + Suffix, new SecretWrite
        {
            Data = new Dictionary<string, string>(StringComparer.Ordinal) { [StateField] = "done", [IdField] = pending.RotationId },
        }, cancellationToken).ConfigureAwait(false);
}
