using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Watching;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Tells every replica that a rotation made a new version, before RotateSecret answers: the latest value is dropped from the
/// cache here, in Redis and (backplane) on every replica, and a change is published through the watch state, so every
/// replica drops its entry again and pushes a SecretEvent to its watchers (as a change found by the watch poller is).
/// </summary>
public sealed class RotationChanges(SecretCache cache, IWatchState watchState, TimeProvider time)
{
    // WRITE-LAYER: PutSecret (branch h-write) announces its writes the same way; once merged both go through one helper.
    public async Task PublishAsync(MountedBackend mounted, string path, string name, string version, CancellationToken cancellationToken)
    {
        await cache.InvalidateLatestAsync(mounted.Mount, name).ConfigureAwait(false);
        // The known version first, so the poller does not announce this version a second time.
        await watchState.SetKnownVersionAsync(path, version).ConfigureAwait(false);
        await watchState.PublishAsync(new WatchMessage(path, version, time.GetUtcNow())).ConfigureAwait(false);
    }
}
