using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Watching;

/// <summary>
/// Rotation detection for static secrets. One replica at a time polls the version of every watched secret at its
/// mount's interval through the mount's <see cref="ISecretVersionProbe"/> (vault-kv: KV metadata current_version;
/// aws-sm: DescribeSecret, the VersionId staged AWSCURRENT; local: the file as loaded) and publishes each change
/// through <see cref="IWatchState"/>; every replica drops the secret's cache entry and only then pushes a
/// <see cref="WatchMessage"/> to its subscribers.
/// </summary>
public sealed partial class SecretWatcher(
    MountTable mounts,
    AccessGuard guard,
    SecretCache cache,
    IWatchState state,
    IOptions<WatchOptions> options,
    TimeProvider time,
    ILogger<SecretWatcher> logger) : BackgroundService
{
    private const string NotWatchable = "watching is supported on vault-kv, aws-sm and local mounts";
    private const string SharedStateUnavailable = "the watch could not be registered with the other replicas (Redis is unavailable); retry";
    private const string WithheldEvent = "the subscriber may not watch this path; its event was withheld";

    private readonly WatchOptions _options = options.Value;
    private readonly ConcurrentDictionary<WatchSubscription, byte> _subscriptions = new();
    private readonly Dictionary<string, DateTimeOffset> _lastPolled = new(StringComparer.Ordinal);

    /// <summary>Validates, authorizes (watch on every path and prefix) and registers a watch; the current versions become the baseline.</summary>
    public async Task<WatchSubscription> SubscribeAsync(AccessContext access, IReadOnlyList<string> paths, IReadOnlyList<string> prefixes,
        CancellationToken cancellationToken)
    {
        var all = paths.Concat(prefixes).ToArray();
        var mountsOfTargets = new string[all.Length];
        try
        {
            if (all.Length == 0)
            {
                BrokerException.ThrowInvalidArgument("name at least one path or prefix to watch");
            }
            if (all.Length > _options.MaxTargetsPerWatch)
            {
                BrokerException.ThrowInvalidArgument($"a watch names at most {_options.MaxTargetsPerWatch} paths and prefixes");
            }
            for (var i = 0; i < all.Length; i++)
            {
                mountsOfTargets[i] = guard.Authorize<ISecretVersionProbe>(access.Caller!, Capability.Watch, all[i], NotWatchable, allowMountRoot: true)
                    .Mount.Prefix;
            }
        }
        catch (BrokerException ex)
        {
            await guard.RefusedAsync(access, new AuditEntry(AuditActions.Watch), ex, cancellationToken).ConfigureAwait(false);
            throw;
        }
        for (var i = 0; i < all.Length; i++)
        {
            await guard.AllowedAsync(access, new AuditEntry(AuditActions.Watch, all[i], mountsOfTargets[i]), cancellationToken).ConfigureAwait(false);
        }
        var subscription = new WatchSubscription(access, new HashSet<string>(paths, StringComparer.Ordinal), [.. prefixes.Distinct(StringComparer.Ordinal)]);
        _subscriptions[subscription] = 0;
        try
        {
            var now = time.GetUtcNow();
            var targets = subscription.Targets(now).ToArray();
            await state.RegisterTargetsAsync(targets).ConfigureAwait(false);
            // The versions right now are the baseline: a change after this call returns produces an event.
            foreach (var path in await ExpandAsync(targets, cancellationToken).ConfigureAwait(false))
            {
                if (await CurrentVersionAsync(path, cancellationToken).ConfigureAwait(false) is { } version)
                {
                    subscription.Baselines[path] = version;
                    await state.SetBaselineAsync(path, version).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Redis down or too slow (seen while opening 10,000 watches on a loaded replica): an outage the caller may
            // retry, not an internal error.
            Unsubscribe(subscription);
            LogSharedStateFailed(ex.GetType().Name);
            var error = new BrokerException(BrokerErrorKind.Unavailable, SharedStateUnavailable);
            await guard.RefusedAsync(access, new AuditEntry(AuditActions.Watch), error, CancellationToken.None).ConfigureAwait(false);
            throw error;
        }
        catch
        {
            Unsubscribe(subscription);
            throw;
        }
        return subscription;
    }

    /// <summary>How many WatchSecrets calls this replica serves now.</summary>
    public int SubscriptionCount => _subscriptions.Count;

    public void Unsubscribe(WatchSubscription subscription)
    {
        _subscriptions.TryRemove(subscription, out _);
        subscription.Events.Writer.TryComplete();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await state.SubscribeAsync(DeliverAsync).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            LogSharedStateFailed(ex.GetType().Name);
        }
        var tick = _options.MountIntervals.Values.Where(i => i > TimeSpan.Zero).Append(_options.PollInterval).Min();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(tick, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await state.RegisterTargetsAsync(LocalTargets()).ConfigureAwait(false);
                if (await state.TryBecomePollerAsync(tick * 3 + TimeSpan.FromSeconds(1)).ConfigureAwait(false))
                {
                    await PollAsync(stoppingToken).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogPollFailed(ex.GetType().Name);
            }
        }
    }

    private WatchTarget[] LocalTargets()
    {
        var now = time.GetUtcNow();
        return [.. _subscriptions.Keys.SelectMany(s => s.Targets(now)).DistinctBy(t => (t.Path, t.IsPrefix))];
    }

    private async Task PollAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var targets = await state.LoadTargetsAsync(LocalTargets(), now).ConfigureAwait(false);
        var dueMounts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var mounted in mounts.Mounts)
        {
            var prefix = mounted.Mount.Prefix;
            if (!_lastPolled.TryGetValue(prefix, out var last) || now - last >= _options.IntervalFor(prefix) - TimeSpan.FromMilliseconds(5))
            {
                dueMounts.Add(prefix);
            }
        }
        foreach (var path in await ExpandAsync(targets.Where(t => dueMounts.Contains(MountOf(t.Path))), cancellationToken).ConfigureAwait(false))
        {
            string? version;
            try
            {
                version = await CurrentVersionAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (BrokerException ex)
            {
                LogVersionReadFailed(MountOf(path), ex.Kind.Name());
                continue;
            }
            if (version is null)
            {
                continue;
            }
            // One atomic step, shared with AnnounceAsync, so a change the broker wrote itself is not announced twice.
            var known = await state.AdvanceKnownVersionAsync(path, version).ConfigureAwait(false);
            if (known is null)
            {
                await state.SetBaselineAsync(path, version).ConfigureAwait(false);
                continue;
            }
            if (known != version)
            {
                LogChangeDetected(MountOf(path));
                await state.PublishAsync(new WatchMessage(path, version, now)).ConfigureAwait(false);
            }
        }
        foreach (var mount in dueMounts)
        {
            _lastPolled[mount] = now;
        }
    }

    /// <summary>
    /// Tells every replica's watchers of <paramref name="path"/> now that the broker wrote <paramref name="version"/>
    /// (PutSecret), instead of at the next poll; each replica drops its cached value before it tells its subscribers.
    /// Skipped when the poller announced this version already.
    /// </summary>
    public async Task AnnounceAsync(string path, string version)
    {
        if (await state.AdvanceKnownVersionAsync(path, version).ConfigureAwait(false) == version)
        {
            return;
        }
        await state.PublishAsync(new WatchMessage(path, version, time.GetUtcNow())).ConfigureAwait(false);
    }

    private string MountOf(string path)
    {
        try
        {
            return mounts.Resolve(path).Mounted.Mount.Prefix;
        }
        catch (BrokerException)
        {
            return "";
        }
    }

    private async Task<IReadOnlyCollection<string>> ExpandAsync(IEnumerable<WatchTarget> targets, CancellationToken cancellationToken)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in targets)
        {
            if (!target.IsPrefix)
            {
                paths.Add(target.Path);
                continue;
            }
            var (listing, mounted, folder) = mounts.Resolve<ISecretListing>(target.Path, NotWatchable, allowMountRoot: true);
            string? continuation = null;
            var count = 0;
            do
            {
                var page = await listing.ListAsync(folder, 500, continuation, cancellationToken).ConfigureAwait(false);
                foreach (var entry in page.Entries)
                {
                    if (count++ >= _options.MaxSecretsPerPrefix)
                    {
                        break;
                    }
                    paths.Add(mounted.Mount.Prefix + "/" + entry.Name);
                }
                continuation = page.Continuation;
            }
            while (continuation is not null && count < _options.MaxSecretsPerPrefix);
        }
        return paths;
    }

    private async Task<string?> CurrentVersionAsync(string path, CancellationToken cancellationToken)
    {
        var (mounted, name) = mounts.Resolve(path);
        if (name.Length == 0 || mounted.Capability<ISecretVersionProbe>() is not { } probe)
        {
            return null;
        }
        try
        {
            return await probe.GetCurrentVersionAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Drops the cached latest value first, so a read right after the event sees the new version; then tells the
    /// subscribers, each authorized for this event's path against the current policy: a path under a watched prefix
    /// that the subscriber may not watch (a deny rule, a grant removed since the watch began) is withheld and the
    /// refusal audited; a subscriber whose credential has expired gets nothing (its stream is ending UNAUTHENTICATED).
    /// </summary>
    private async Task DeliverAsync(WatchMessage message)
    {
        var (mounted, name) = mounts.Resolve(message.Path);
        await cache.InvalidateLatestAsync(mounted.Mount, name, message.Time).ConfigureAwait(false);
        var now = time.GetUtcNow();
        foreach (var subscription in _subscriptions.Keys)
        {
            if (!subscription.Matches(message.Path) || subscription.Access.Caller is not { } caller || caller.CredentialExpired(now))
            {
                continue;
            }
            if (!guard.IsAllowed(caller, Capability.Watch, message.Path))
            {
                await guard.RefusedAsync(subscription.Access, new AuditEntry(AuditActions.Watch, message.Path, mounted.Mount.Prefix),
                    new BrokerException(BrokerErrorKind.PermissionDenied, WithheldEvent), CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            if (subscription.IsNews(message))
            {
                subscription.Events.Writer.TryWrite(message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A watched secret on mount {Mount} has a new version")]
    private partial void LogChangeDetected(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading version metadata on mount {Mount} failed ({Status}); polled again next interval")]
    private partial void LogVersionReadFailed(string mount, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watch poll failed ({ErrorType}); polled again next interval")]
    private partial void LogPollFailed(string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watch could not use its shared state ({ErrorType})")]
    private partial void LogSharedStateFailed(string errorType);
}
