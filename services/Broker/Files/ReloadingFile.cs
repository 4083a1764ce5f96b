using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;

namespace SecretsBroker.Broker.Files;

/// <summary>
/// A file parsed into <typeparamref name="T"/> and re-parsed when it changes (the local secrets file,
/// the policy file). Start-up fails when the file is missing or broken; a broken edit later keeps the
/// previous value and logs why. <paramref name="parse"/> must throw <see cref="FormatException"/> with a
/// message that never quotes the file's contents. Each reload's outcome goes to <paramref name="status"/>
/// (metrics and readiness, see <see cref="ConfigReloads"/>).
/// </summary>
public sealed partial class ReloadingFile<T> : IDisposable where T : class
{
    private readonly string _path;
    private readonly string _kind;
    private readonly Func<string, DateTimeOffset, T> _parse;
    private readonly ILogger _logger;
    private readonly PhysicalFileProvider? _watcher;
    private readonly IDisposable? _registration;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private readonly ConfigReloads.Watched? _status;
    private volatile T _current;

    public ReloadingFile(string path, string kind, Func<string, DateTimeOffset, T> parse, bool watch, ILogger logger, ConfigReloads.Watched? status = null)
    {
        _status = status;
        _path = Path.GetFullPath(path);
        _kind = kind;
        _parse = parse;
        _logger = logger;
        if (!File.Exists(_path))
        {
            throw new FileNotFoundException($"the {kind} '{_path}' does not exist", _path);
        }
        try
        {
            _current = Load();
        }
        catch (FormatException ex)
        {
            throw new FormatException($"the {kind} '{_path}' is invalid: {ex.Message}", ex);
        }
        if (watch)
        {
            _watcher = new PhysicalFileProvider(Path.GetDirectoryName(_path)!);
            var fileName = Path.GetFileName(_path);
            _registration = ChangeToken.OnChange(() => _watcher.Watch(fileName), () => _ = ReloadAsync());
        }
    }

    public T Current => _current;

    /// <summary>The full path of the file.</summary>
    public string FullPath => _path;

    /// <summary>
    /// Reloads now rather than when the watcher notices (a writer that replaced the file and must answer with the
    /// new contents loaded). Serialized with watcher reloads, each of which reads the whole file, so the last one
    /// loads the newest contents. False when the file could not be loaded (the reason is logged and reported).
    /// </summary>
    public Task<bool> ReloadNowAsync() => ReloadAsync();

    /// <summary>Raised after a change was loaded, with the new value.</summary>
    public event Action<T>? Reloaded;

    public void Dispose()
    {
        _registration?.Dispose();
        _watcher?.Dispose();
        _reloadLock.Dispose();
    }

    private T Load() => _parse(File.ReadAllText(_path), new DateTimeOffset(File.GetLastWriteTimeUtc(_path), TimeSpan.Zero));

    private async Task<bool> ReloadAsync()
    {
        await _reloadLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Editors write in several steps; a read that races one is retried briefly before giving up.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var loaded = Load();
                    _current = loaded;
                    _status?.Succeeded();
                    LogReloaded(_kind);
                    Reloaded?.Invoke(loaded);
                    return true;
                }
                catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException)
                {
                    if (attempt < 3)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt)).ConfigureAwait(false);
                        continue;
                    }
                    var reason = ex is FormatException ? ex.Message : "the file could not be read";
                    _status?.Failed($"{ex.GetType().Name}: {reason}");
                    LogReloadFailed(_kind, ex.GetType().Name, reason);
                    return false;
                }
            }
        }
        finally
        {
            _reloadLock.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The {Kind} was reloaded")]
    private partial void LogReloaded(string kind);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A change to the {Kind} was ignored, previous contents kept ({ErrorType}: {Reason})")]
    private partial void LogReloadFailed(string kind, string errorType, string reason);
}
