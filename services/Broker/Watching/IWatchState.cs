namespace SecretsBroker.Broker.Watching;

/// <summary>
/// What the replicas share to detect changes once and tell everyone: the watched targets, the last known version of
/// each watched secret, the poller election, and the change channel. Redis when one is configured
/// (<see cref="RedisWatchState"/>), this process otherwise (<see cref="InMemoryWatchState"/>).
/// </summary>
public interface IWatchState
{
    /// <summary>Records <paramref name="version"/> as the known version unless one is known already (a new watch's baseline).</summary>
    Task SetBaselineAsync(string path, string version);

    Task<string?> GetKnownVersionAsync(string path);

    Task SetKnownVersionAsync(string path, string version);

    /// <summary>
    /// Atomically: when a version of <paramref name="path"/> is known and differs, makes <paramref name="version"/> the
    /// known one. Returns the version known before (null when none was: nothing is stored then).
    /// </summary>
    Task<string?> AdvanceKnownVersionAsync(string path, string version);

    /// <summary>Tells the polling replica what this replica's subscribers watch.</summary>
    Task RegisterTargetsAsync(IReadOnlyList<WatchTarget> targets);

    /// <summary>Every target any replica watches; <paramref name="local"/> are this replica's own.</summary>
    Task<IReadOnlyList<WatchTarget>> LoadTargetsAsync(IReadOnlyList<WatchTarget> local, DateTimeOffset now);

    /// <summary>Whether this replica polls now (one replica at a time, held for <paramref name="hold"/> and renewed while it polls).</summary>
    Task<bool> TryBecomePollerAsync(TimeSpan hold);

    /// <summary>Publishes a change to every replica, this one included.</summary>
    Task PublishAsync(WatchMessage message);

    /// <summary>Starts delivering published changes to <paramref name="deliver"/>.</summary>
    Task SubscribeAsync(Func<WatchMessage, Task> deliver);
}
