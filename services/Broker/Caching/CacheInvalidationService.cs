using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Caching;

/// <summary>
/// Turns backend change signals into cache invalidation on every replica: a local file reload expires
/// all entries of its mount (through the backplane, so other replicas do not wait for the TTL). Also
/// opens the Redis connection at start, so the first read does not pay for it.
/// </summary>
public sealed partial class CacheInvalidationService(MountTable mounts, SecretCache cache, IServiceProvider services, ILogger<CacheInvalidationService> logger)
    : IHostedService
{
    private readonly List<(LocalFileBackend Backend, Action Handler)> _subscriptions = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var mounted in mounts.Mounts)
        {
            if (mounted.Backend is LocalFileBackend local)
            {
                var mount = mounted.Mount;
                Action handler = () => _ = InvalidateAsync(mount);
                local.Reloaded += handler;
                _subscriptions.Add((local, handler));
            }
        }
        if (services.GetService<RedisConnection>() is { } redis)
        {
            await redis.GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var (backend, handler) in _subscriptions)
        {
            backend.Reloaded -= handler;
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
