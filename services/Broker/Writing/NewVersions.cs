using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Watching;

namespace SecretsBroker.Broker.Writing;

/// <summary>
/// The one way the broker announces a version it made itself (PutSecret, RotateSecret) before it answers: the entries the
/// new version changes are dropped here, in Redis and (backplane) on every replica, and every replica's watchers are told
/// at once instead of at the next poll (never twice: the poller and this advance the known version in one step).
/// </summary>
public sealed partial class NewVersions(SecretCache cache, SecretWatcher watcher, ILogger<NewVersions> logger)
{
    public async Task PublishAsync(string path, MountDefinition mount, string name, string version)
    {
        try
        {
            await cache.InvalidateWrittenAsync(mount, name).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogInvalidationFailed(mount.Prefix, ex.GetType().Name);
        }
        try
        {
            await watcher.AnnounceAsync(path, version).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogAnnounceFailed(mount.Prefix, ex.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A secret on mount {Mount} was written but its cached values could not be dropped ({ErrorType}); they expire at their TTL")]
    private partial void LogInvalidationFailed(string mount, string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A secret on mount {Mount} was written but its watchers could not be told now ({ErrorType}); the next poll tells them")]
    private partial void LogAnnounceFailed(string mount, string errorType);
}
