using System.Globalization;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

// Writes: a KV v2 version through POST <engine>/data/<name> with options.cas (vault-plugin-secrets-kv path_data.go,
// pathDataWrite and validateCheckAndSetOption: cas must equal the key's current_version, 0 when the key does not
// exist; a mismatch, or a missing cas where cas_required is set, is a 400). Vault policy needs `create` (new key)
// or `update` (existing key) on <engine>/data/<name>.
public sealed partial class VaultKvBackend
{
    public async Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken)
    {
        if (write.Binary is not null || write.Data is null)
        {
            BrokerException.ThrowFailedPrecondition("vault-kv mounts store key/value fields; write 'data', not 'binary_data'");
        }
        if (write.Stages is not null)
        {
            BrokerException.ThrowFailedPrecondition("vault-kv mounts have no stages; write without stages");
        }
        int? cas = null;
        if (write.ExpectedVersion is { } expected)
        {
            if (expected.Length == 0)
            {
                cas = 0;
            }
            else if (int.TryParse(expected, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= 1)
            {
                cas = number;
            }
            else
            {
                BrokerException.ThrowInvalidArgument("expected_version must be a positive whole number (a KV version) on vault-kv mounts, or empty for 'only if new'");
            }
        }
        return await WriteVersionAsync(name, write.Data, cas, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes a new KV version; with <paramref name="cas"/> only if it is the current version number (0: only if the
    /// key does not exist). A mismatch is FAILED_PRECONDITION naming the current version, read from the key's metadata.
    /// </summary>
    public async Task<WrittenVersion> WriteVersionAsync(string name, IReadOnlyDictionary<string, string> data, int? cas, CancellationToken cancellationToken)
    {
        KvVersionMetadata written;
        try
        {
            written = await client.KvWriteAsync(EnginePath, name, data, cas, mount, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.FailedPrecondition && ex.Message == VaultErrors.CasMismatchMessage)
        {
            throw CheckAndSet.Mismatch(await CurrentVersionOrNullAsync(name, cancellationToken).ConfigureAwait(false));
        }
        return new WrittenVersion(written.Version.ToString(CultureInfo.InvariantCulture), written.CreatedTime);
    }

    private async Task<string?> CurrentVersionOrNullAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var metadata = await client.KvReadMetadataAsync(EnginePath, name, mount, cancellationToken).ConfigureAwait(false);
            return metadata.CurrentVersion > 0 ? metadata.CurrentVersion.ToString(CultureInfo.InvariantCulture) : null;
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.NotFound)
        {
            return null;
        }
    }
}
