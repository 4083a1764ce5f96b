using System.Globalization;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Backends.Local;

/// <summary>
/// Serves secrets from a JSON or YAML file, reloading it when it changes. A broken edit keeps the
/// previous contents and logs why; a missing or broken file at start stops the broker.
/// </summary>
public sealed partial class LocalFileBackend : ISecretBackend, IDisposable
{
    private readonly string _filePath;
    private readonly bool _isYaml;
    private readonly ILogger _logger;
    private readonly PhysicalFileProvider? _watcher;
    private readonly IDisposable? _watchRegistration;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private volatile LocalSecretSnapshot _snapshot;

    public LocalFileBackend(string filePath, bool watch, ILogger<LocalFileBackend> logger)
    {
        _filePath = Path.GetFullPath(filePath);
        _isYaml = Path.GetExtension(_filePath) is ".yaml" or ".yml";
        _logger = logger;
        if (!File.Exists(_filePath))
        {
            throw new FileNotFoundException($"the secrets file '{_filePath}' does not exist");
        }
        _snapshot = Load();
        if (watch)
        {
            _watcher = new PhysicalFileProvider(Path.GetDirectoryName(_filePath)!);
            var fileName = Path.GetFileName(_filePath);
            _watchRegistration = ChangeToken.OnChange(() => _watcher.Watch(fileName), () => _ = ReloadAsync());
        }
    }

    /// <summary>Raised after a reload changed the file's contents.</summary>
    public event Action? Reloaded;

    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        if (!_snapshot.Secrets.TryGetValue(name, out var versions))
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

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
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
        _watchRegistration?.Dispose();
        _watcher?.Dispose();
        _reloadLock.Dispose();
    }

    private static int LowerBound(string[] sorted, string value)
    {
        var index = Array.BinarySearch(sorted, value, StringComparer.Ordinal);
        return index >= 0 ? index : ~index;
    }

    private LocalSecretSnapshot Load()
    {
        var content = File.ReadAllText(_filePath);
        return LocalSecretFile.Parse(content, _isYaml, new DateTimeOffset(File.GetLastWriteTimeUtc(_filePath), TimeSpan.Zero));
    }

    private async Task ReloadAsync()
    {
        await _reloadLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Editors write in several steps; a read that races one is retried briefly before giving up.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    _snapshot = Load();
                    LogReloaded(_snapshot.Secrets.Count);
                    Reloaded?.Invoke();
                    return;
                }
                catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException)
                {
                    if (attempt < 3)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt)).ConfigureAwait(false);
                        continue;
                    }
                    LogReloadFailed(ex.GetType().Name, ex is FormatException ? ex.Message : "the file could not be read");
                    return;
                }
            }
        }
        finally
        {
            _reloadLock.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Local secrets file reloaded: {SecretCount} secrets")]
    private partial void LogReloaded(int secretCount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Local secrets file change ignored, previous contents kept ({ErrorType}: {Reason})")]
    private partial void LogReloadFailed(string errorType, string reason);
}
