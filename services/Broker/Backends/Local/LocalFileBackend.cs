using System.Globalization;
using SecretsBroker.Broker.Files;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Local;

/// <summary>
/// Serves secrets from a JSON or YAML file, reloading it when it changes. A broken edit keeps the
/// previous contents and logs why; a missing or broken file at start stops the broker.
/// </summary>
public sealed partial class LocalFileBackend : ISecretReading, ISecretListing, ISecretVersionProbe, ISecretChangeNotifying, ISecretWriter, IDisposable
{
    private readonly ReloadingFile<LocalSecretSnapshot> _file;
    private readonly LocalWriteSettings? _writes;

    /// <param name="writes">How writes are stored; null for a read-only mount (writes are FAILED_PRECONDITION).</param>
    public LocalFileBackend(ReloadingFile<LocalSecretSnapshot> file, LocalWriteSettings? writes = null)
    {
        _file = file;
        _writes = writes;
        file.Reloaded += _ => Changed?.Invoke();
    }

    /// <summary>Raised after a reload changed the file's contents.</summary>
    public event Action? Changed;

    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        if (!_file.Current.Secrets.TryGetValue(name, out var versions))
        {
            BrokerException.ThrowNotFound("secret not found");
        }
        if (selector.Stage is not null)
        {
            BrokerException.ThrowFailedPrecondition("local mounts have no stages; select a version number instead");
        }
        if (selector.Version is null)
        {
            return Task.FromResult(versions[^1]);
        }
        if (!int.TryParse(selector.Version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1)
        {
            BrokerException.ThrowInvalidArgument("version must be a positive whole number on local mounts");
        }
        if (number > versions.Length)
        {
            BrokerException.ThrowNotFound($"version {number} does not exist; the latest is {versions.Length}");
        }
        return Task.FromResult(versions[number - 1]);
    }

    /// <summary>The latest version in the file as this replica has loaded it (a reload follows every change of the file).</summary>
    public Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken) =>
        Task.FromResult(_file.Current.Secrets.TryGetValue(name, out var versions) ? versions[^1].Version : null);

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken)
    {
        var snapshot = _file.Current;
        var names = snapshot.SortedNames;
        var folderPrefix = folder.Length == 0 ? "" : folder + "/";
        // Names are in ordinal order, so everything under the folder is one contiguous run.
        var start = LowerBound(names, continuation is null ? folderPrefix : continuation);
        if (continuation is not null && start < names.Length && names[start] == continuation)
        {
            start++;
        }
        var entries = new List<SecretListingEntry>(Math.Min(pageSize, 64));
        var index = start;
        for (; index < names.Length && entries.Count < pageSize; index++)
        {
            var name = names[index];
            if (!name.StartsWith(folderPrefix, StringComparison.Ordinal))
            {
                break;
            }
            var latest = snapshot.Secrets[name][^1];
            entries.Add(new SecretListingEntry(name, latest.Version, latest.CreatedAt));
        }
        var more = index < names.Length && names[index].StartsWith(folderPrefix, StringComparison.Ordinal);
        return Task.FromResult(new SecretListingPage(entries, more ? entries[^1].Name : null));
    }

    public void Dispose()
    {
        _file.Dispose();
        _writeLock.Dispose();
    }

    private static int LowerBound(string[] sorted, string value)
    {
        var index = Array.BinarySearch(sorted, value, StringComparer.Ordinal);
        return index >= 0 ? index : ~index;
    }
}
