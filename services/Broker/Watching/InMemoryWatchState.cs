using System.Collections.Concurrent;

namespace SecretsBroker.Broker.Watching;

/// <summary>Watch state of a broker without Redis: this replica is the only one, so it always polls and delivers to itself.</summary>
public sealed class InMemoryWatchState : IWatchState
{
    private readonly ConcurrentDictionary<string, string> _versions = new(StringComparer.Ordinal);
    private Func<WatchMessage, Task>? _deliver;

    public Task SetBaselineAsync(string path, string version)
    {
        _versions.TryAdd(path, version);
        return Task.CompletedTask;
    }

    public Task<string?> GetKnownVersionAsync(string path) => Task.FromResult(_versions.GetValueOrDefault(path));

    public Task SetKnownVersionAsync(string path, string version)
    {
        _versions[path] = version;
        return Task.CompletedTask;
    }

    public Task<string?> AdvanceKnownVersionAsync(string path, string version)
    {
        while (_versions.TryGetValue(path, out var known))
        {
            if (known == version || _versions.TryUpdate(path, version, known))
            {
                return Task.FromResult<string?>(known);
            }
        }
        return Task.FromResult<string?>(null);
    }

    public Task RegisterTargetsAsync(IReadOnlyList<WatchTarget> targets) => Task.CompletedTask;

    public Task<IReadOnlyList<WatchTarget>> LoadTargetsAsync(IReadOnlyList<WatchTarget> local, DateTimeOffset now) => Task.FromResult(local);

    public Task<bool> TryBecomePollerAsync(TimeSpan hold) => Task.FromResult(true);

    public Task PublishAsync(WatchMessage message) => _deliver?.Invoke(message) ?? Task.CompletedTask;

    public Task SubscribeAsync(Func<WatchMessage, Task> deliver)
    {
        _deliver = deliver;
        return Task.CompletedTask;
    }
}
