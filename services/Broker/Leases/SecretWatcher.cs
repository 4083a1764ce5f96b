using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Secrets;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Leases;

/// <summary>One WatchSecrets call: what it watches and the changes waiting to be sent.</summary>
public sealed class WatchSubscription(IReadOnlyCollection<string> paths, IReadOnlyCollection<string> prefixes)
{
    public IReadOnlyCollection<string> Paths { get; } = paths;

    public IReadOnlyCollection<string> Prefixes { get; } = prefixes;

    public Channel<WatchMessage> Events { get; } = Channel.CreateUnbounded<WatchMessage>(new UnboundedChannelOptions { SingleReader = true });

    public bool Matches(string path) => Paths.Contains(path) || Prefixes.Any(p => path.StartsWith(p + "/", StringComparison.Ordinal));
}

/// <summary>
/// Rotation detection for static secrets. One replica at a time (a Redis lock, SET NX PX) polls the
/// version metadata of every watched secret at its mount's interval (vault-kv: KV metadata
/// current_version; aws-sm: DescribeSecret, the VersionId staged AWSCURRENT) and publishes each change
/// on Redis pub/sub; every replica (without Redis: this one) drops the secret's cache entry and only
/// then pushes a <see cref="WatchMessage"/> to its subscribers. Watched paths, versions and messages in
/// Redis are sealed or HMACed: no readable path.
/// </summary>
public sealed partial class SecretWatcher(
    MountTable mounts,
    SecretCache cache,
    PolicyEvaluator policy,
    AccessAuditor auditor,
    CacheKeyRing keys,
    IServiceProvider services,
    IOptions<CacheOptions> cacheOptions,
    IOptions<WatchOptions> options,
    TimeProvider time,
    ILogger<SecretWatcher> logger) : BackgroundService
{
    private readonly WatchOptions _options = options.Value;
    private readonly RedisConnection? _redis = services.GetService<RedisConnection>();
    private readonly string _prefix = cacheOptions.Value.KeyPrefix + ":watch:";
    private readonly string _replicaId = Guid.NewGuid().ToString("n");
    private readonly ConcurrentDictionary<WatchSubscription, byte> _subscriptions = new();
    private readonly ConcurrentDictionary<string, string> _localVersions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastPolled = new(StringComparer.Ordinal);

    private RedisKey LockKey => _prefix + "lock";
    private RedisKey TargetsKey => _prefix + "targets";
    private RedisKey VersionsKey => _prefix + "versions";
    private RedisChannel EventsChannel => RedisChannel.Literal(_prefix + "events");

    /// <summary>Validates, authorizes (watch on every path and prefix) and registers a watch; the current versions become the baseline.</summary>
    public async Task<WatchSubscription> SubscribeAsync(AccessContext access, IReadOnlyList<string> paths, IReadOnlyList<string> prefixes,
        CancellationToken cancellationToken)
    {
        var all = paths.Concat(prefixes).ToArray();
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
            foreach (var target in all)
            {
                LogicalPath.EnsureValid(target);
                policy.EnsureAllowed(access.Caller!, Capability.Watch, target);
                var (mounted, _) = mounts.Resolve(target);
                if (mounted.Backend is not (VaultKvBackend or AwsSecretsManagerBackend or LocalFileBackend))
                {
                    BrokerException.ThrowFailedPrecondition("watching is supported on vault-kv, aws-sm and local mounts");
                }
            }
        }
        catch (BrokerException ex)
        {
            await auditor.RefusedAsync(access, AuditActions.Watch, "", null, ex.StatusCode, ex.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
        foreach (var target in all)
        {
            await auditor.AllowedAsync(access, AuditActions.Watch, target, null, mounts.Resolve(target).Mounted.Mount.Prefix, cancellationToken)
                .ConfigureAwait(false);
        }
        var subscription = new WatchSubscription(new HashSet<string>(paths, StringComparer.Ordinal), [.. prefixes.Distinct(StringComparer.Ordinal)]);
        _subscriptions[subscription] = 0;
        try
        {
            var now = time.GetUtcNow();
            await RegisterTargetsAsync([.. paths.Select(p => new WatchTarget(p, false, now)), .. prefixes.Select(p => new WatchTarget(p, true, now))])
                .ConfigureAwait(false);
            // The versions right now are the baseline: a change after this call returns produces an event.
            foreach (var path in await ExpandAsync(subscription.Paths.Select(p => new WatchTarget(p, false, now))
                .Concat(subscription.Prefixes.Select(p => new WatchTarget(p, true, now))), cancellationToken).ConfigureAwait(false))
            {
                var version = await CurrentVersionAsync(path, cancellationToken).ConfigureAwait(false);
                if (version is not null)
                {
                    await SetBaselineAsync(path, version).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            Unsubscribe(subscription);
            throw;
        }
        return subscription;
    }

    public void Unsubscribe(WatchSubscription subscription)
    {
        _subscriptions.TryRemove(subscription, out _);
        subscription.Events.Writer.TryComplete();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_redis is not null)
        {
            try
            {
                var subscriber = (await _redis.GetAsync().ConfigureAwait(false)).GetSubscriber();
                await subscriber.SubscribeAsync(EventsChannel, (channel, message) => _ = OnPublishedAsync(message)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                LogRedisFailed(ex.GetType().Name);
            }
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
                await RefreshTargetsAsync().ConfigureAwait(false);
                if (await IsPollerAsync(tick).ConfigureAwait(false))
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

    private async Task<bool> IsPollerAsync(TimeSpan tick)
    {
        if (_redis is null)
        {
            return true;
        }
        var database = (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase();
        var hold = tick * 3 + TimeSpan.FromSeconds(1);
        if (await database.StringSetAsync(LockKey, _replicaId, hold, When.NotExists).ConfigureAwait(false))
        {
            return true;
        }
        if (await database.StringGetAsync(LockKey).ConfigureAwait(false) == _replicaId)
        {
            await database.KeyExpireAsync(LockKey, hold).ConfigureAwait(false);
            return true;
        }
        return false;
    }

    private async Task PollAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var targets = await LoadTargetsAsync().ConfigureAwait(false);
        var dueMounts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var mounted in mounts.Mounts)
        {
            var prefix = mounted.Mount.Prefix;
            if (!_lastPolled.TryGetValue(prefix, out var last) || now - last >= _options.IntervalFor(prefix) - TimeSpan.FromMilliseconds(5))
            {
                dueMounts.Add(prefix);
            }
        }
        var polled = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in await ExpandAsync(targets.Where(t => dueMounts.Contains(MountOf(t.Path))), cancellationToken).ConfigureAwait(false))
        {
            polled.Add(MountOf(path));
            string? version;
            try
            {
                version = await CurrentVersionAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (BrokerException ex)
            {
                LogVersionReadFailed(MountOf(path), ex.StatusCode.ToString());
                continue;
            }
            if (version is null)
            {
                continue;
            }
            var known = await GetKnownVersionAsync(path).ConfigureAwait(false);
            if (known == version)
            {
                continue;
            }
            await SetKnownVersionAsync(path, version).ConfigureAwait(false);
            if (known is not null)
            {
                await PublishAsync(new WatchMessage(path, version, now)).ConfigureAwait(false);
            }
        }
        foreach (var mount in dueMounts)
        {
            _lastPolled[mount] = now;
        }
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
            var (mounted, folder) = mounts.Resolve(target.Path);
            string? continuation = null;
            var count = 0;
            do
            {
                var page = await mounted.Backend.ListAsync(folder, 500, continuation, cancellationToken).ConfigureAwait(false);
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
        if (name.Length == 0)
        {
            return null;
        }
        try
        {
            return mounted.Backend switch
            {
                VaultKvBackend kv => (await kv.GetCurrentVersionAsync(name, cancellationToken).ConfigureAwait(false)).ToString(CultureInfo.InvariantCulture),
                AwsSecretsManagerBackend aws => await aws.GetCurrentVersionIdAsync(name, cancellationToken).ConfigureAwait(false),
                // The file as the polling replica has loaded it (a reload after every change of the file).
                LocalFileBackend local => (await local.GetAsync(name, VersionSelector.Latest, cancellationToken).ConfigureAwait(false)).Version,
                _ => null,
            };
        }
        catch (BrokerException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
    }

    // ---- shared state: Redis when configured, this process otherwise ------------------------------

    private string VersionField(string path) => auditor.Hmac("watch-version\0" + path);

    private async Task SetBaselineAsync(string path, string version)
    {
        if (_redis is null)
        {
            _localVersions.TryAdd(path, version);
            return;
        }
        await (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase().HashSetAsync(VersionsKey, VersionField(path), version, When.NotExists)
            .ConfigureAwait(false);
    }

    private async Task<string?> GetKnownVersionAsync(string path)
    {
        if (_redis is null)
        {
            return _localVersions.GetValueOrDefault(path);
        }
        return await (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase().HashGetAsync(VersionsKey, VersionField(path)).ConfigureAwait(false);
    }

    private async Task SetKnownVersionAsync(string path, string version)
    {
        if (_redis is null)
        {
            _localVersions[path] = version;
            return;
        }
        await (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase().HashSetAsync(VersionsKey, VersionField(path), version).ConfigureAwait(false);
    }

    private async Task RegisterTargetsAsync(IReadOnlyList<WatchTarget> targets)
    {
        if (_redis is null)
        {
            return;
        }
        var database = (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase();
        var entries = targets.Select(t =>
        {
            var field = auditor.Hmac((t.IsPrefix ? "watch-prefix\0" : "watch-path\0") + t.Path);
            return new HashEntry(field, keys.Seal("watch-target:" + field, JsonSerializer.SerializeToUtf8Bytes(t, LeaseJsonContext.Default.WatchTarget)));
        }).ToArray();
        await database.HashSetAsync(TargetsKey, entries).ConfigureAwait(false);
    }

    private Task RefreshTargetsAsync()
    {
        var now = time.GetUtcNow();
        var targets = _subscriptions.Keys
            .SelectMany(s => s.Paths.Select(p => new WatchTarget(p, false, now)).Concat(s.Prefixes.Select(p => new WatchTarget(p, true, now))))
            .DistinctBy(t => (t.Path, t.IsPrefix)).ToArray();
        return targets.Length == 0 ? Task.CompletedTask : RegisterTargetsAsync(targets);
    }

    private async Task<IReadOnlyList<WatchTarget>> LoadTargetsAsync()
    {
        var now = time.GetUtcNow();
        if (_redis is null)
        {
            return [.. _subscriptions.Keys
                .SelectMany(s => s.Paths.Select(p => new WatchTarget(p, false, now)).Concat(s.Prefixes.Select(p => new WatchTarget(p, true, now))))
                .DistinctBy(t => (t.Path, t.IsPrefix))];
        }
        var database = (await _redis.GetAsync().ConfigureAwait(false)).GetDatabase();
        var stale = _options.MountIntervals.Values.Append(_options.PollInterval).Max() * 3 + TimeSpan.FromSeconds(10);
        var targets = new List<WatchTarget>();
        foreach (var entry in await database.HashGetAllAsync(TargetsKey).ConfigureAwait(false))
        {
            var field = entry.Name.ToString();
            if (keys.TryUnseal("watch-target:" + field, (byte[])entry.Value!, out var plaintext, out _) != UnsealFailure.None || plaintext is null
                || JsonSerializer.Deserialize(plaintext, LeaseJsonContext.Default.WatchTarget) is not { } target)
            {
                continue;
            }
            if (now - target.LastSeen > stale)
            {
                // No replica watches this any more.
                await database.HashDeleteAsync(TargetsKey, field).ConfigureAwait(false);
                continue;
            }
            targets.Add(target);
        }
        return targets;
    }

    private async Task PublishAsync(WatchMessage message)
    {
        LogChangeDetected(MountOf(message.Path));
        if (_redis is null)
        {
            await DeliverAsync(message).ConfigureAwait(false);
            return;
        }
        var payload = keys.Seal("watch-event", JsonSerializer.SerializeToUtf8Bytes(message, LeaseJsonContext.Default.WatchMessage));
        await (await _redis.GetAsync().ConfigureAwait(false)).GetSubscriber().PublishAsync(EventsChannel, payload).ConfigureAwait(false);
    }

    private async Task OnPublishedAsync(RedisValue payload)
    {
        try
        {
            if (keys.TryUnseal("watch-event", (byte[])payload!, out var plaintext, out _) != UnsealFailure.None || plaintext is null
                || JsonSerializer.Deserialize(plaintext, LeaseJsonContext.Default.WatchMessage) is not { } message)
            {
                LogBadMessage();
                return;
            }
            await DeliverAsync(message).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogDeliveryFailed(ex.GetType().Name);
        }
    }

    /// <summary>Drops the cached latest value first, so a read right after the event sees the new version; then tells the subscribers.</summary>
    private async Task DeliverAsync(WatchMessage message)
    {
        var (mounted, name) = mounts.Resolve(message.Path);
        await cache.InvalidateLatestAsync(mounted, name).ConfigureAwait(false);
        foreach (var subscription in _subscriptions.Keys)
        {
            if (subscription.Matches(message.Path))
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watch could not use Redis ({ErrorType})")]
    private partial void LogRedisFailed(string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped a watch message that could not be unsealed")]
    private partial void LogBadMessage();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Delivering a watch message failed ({ErrorType})")]
    private partial void LogDeliveryFailed(string errorType);
}
