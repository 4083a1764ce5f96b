using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Caching;

/// <summary>
/// Turns backend change signals into cache invalidation on every replica: a backend that changes by other means
/// than the broker (a local file edited) expires all entries of its mount, through the backplane, so other
/// replicas do not wait for the TTL.
/// </summary>
public sealed partial class CacheInvalidationService(MountTable mounts, SecretCache cache, ILogger<CacheInvalidationService> logger) : IHostedService
{
    private readonly List<(ISecretChangeNotifying Backend, Action Handler)> _subscriptions = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var mounted in mounts.Mounts)
        {
            if (mounted.Capability<ISecretChangeNotifying>() is { } notifying)
            {
                var mount = mounted.Mount;
                Action handler = () => _ = InvalidateAsync(mount);
                notifying.Changed += handler;
                _subscriptions.Add((notifying, handler));
            }
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var (backend, handler) in _subscriptions)
        {
            backend.Changed -= handler;
        }
        _subscriptions.Clear();
        return Task.CompletedTask;
    }

    private async Task InvalidateAsync(MountDefinition mount)
    {
        try
        {
            await cache.InvalidateMountAsync(mount).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogInvalidationFailed(mount.Prefix, ex.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not invalidate the cache entries of mount {Mount} ({ErrorType}); they expire at their TTL")]
    private partial void LogInvalidationFailed(string mount, string errorType);
}
