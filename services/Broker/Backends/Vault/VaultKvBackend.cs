using System.Globalization;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Mount type <c>vault-kv</c>: a KV version 2 secrets engine. Names inside the mount are KV paths under
/// the engine; versions are KV version numbers; stages do not exist here.
/// </summary>
public sealed partial class VaultKvBackend(VaultClient client, string enginePath, string mount)
    : ISecretReading, ISecretListing, ISecretVersionProbe, ISecretWriter, IBackendHealthProbe
{
    public string EnginePath { get; } = enginePath;

    public async Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        if (selector.Stage is not null)
        {
            BrokerException.ThrowFailedPrecondition("vault-kv mounts have no stages; select a version number instead");
        }
        int? version = null;
        if (selector.Version is not null)
        {
            if (!int.TryParse(selector.Version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1)
            {
                BrokerException.ThrowInvalidArgument("version must be a positive whole number on vault-kv mounts");
            }
            version = number;
        }
        var read = await client.KvReadAsync(EnginePath, name, version, mount, cancellationToken).ConfigureAwait(false);
        return new SecretValue
        {
            Version = read.Metadata!.Version.ToString(CultureInfo.InvariantCulture),
            CreatedAt = read.Metadata.CreatedTime,
            Data = VaultClient.ToStrings(read.Data!),
        };
    }

    /// <summary>
    /// Walks the KV tree beneath <paramref name="folder"/> depth first with each folder's keys in ordinal
    /// order, which yields full names in ordinal order. The continuation is the last name returned;
    /// subtrees that lie entirely before it are not listed again.
    /// </summary>
    public async Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken)
    {
        var names = new List<string>(Math.Min(pageSize + 1, 256));
        await WalkAsync(folder, continuation, pageSize + 1, names, cancellationToken).ConfigureAwait(false);
        var more = names.Count > pageSize;
        if (more)
        {
            names.RemoveAt(names.Count - 1);
        }
        return new SecretListingPage([.. names.Select(n => new SecretListingEntry(n))], more && names.Count > 0 ? names[^1] : null);
    }

    /// <summary>The current version number, as KV metadata reports it (the watch path polls this).</summary>
    public async Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken) =>
        (await client.KvReadMetadataAsync(EnginePath, name, mount, cancellationToken).ConfigureAwait(false)).CurrentVersion.ToString(CultureInfo.InvariantCulture);

    private async Task WalkAsync(string folder, string? after, int limit, List<string> output, CancellationToken cancellationToken)
    {
        var keys = await client.KvListAsync(EnginePath, folder, mount, cancellationToken).ConfigureAwait(false);
        Array.Sort(keys, StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (output.Count >= limit)
            {
                return;
            }
            var full = folder.Length == 0 ? key : folder + "/" + key;
            if (key.EndsWith('/'))
            {
                // Every name in this subtree starts with 'full'; skip it when all of them sort before the cursor.
                if (after is not null && !after.StartsWith(full, StringComparison.Ordinal) && string.CompareOrdinal(full, after) < 0)
                {
                    continue;
                }
                await WalkAsync(full.TrimEnd('/'), after, limit, output, cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (after is null || string.CompareOrdinal(full, after) > 0)
            {
                output.Add(full);
            }
        }
    }

    /// <summary>Readiness: Vault's sys/health on this mount's connection (no secret is read).</summary>
    public Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken) => client.ProbeAsync(cancellationToken);
}
