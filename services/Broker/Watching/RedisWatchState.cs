using System.Text.Json;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Watching;

/// <summary>
/// Watch state shared through Redis: targets and versions in hashes keyed by HMACs of the paths (targets sealed with
/// the cache key ring), the poller lock (SET NX PX), and a sealed pub/sub channel. No readable path reaches Redis.
/// </summary>
public sealed partial class RedisWatchState(
    RedisConnection redis,
    CacheKeyRing keys,
    AccessAuditor auditor,
    IOptions<CacheOptions> cacheOptions,
    IOptions<WatchOptions> options,
    ILogger<RedisWatchState> logger) : IWatchState
{
    private readonly string _prefix = cacheOptions.Value.KeyPrefix + ":watch:";
    private readonly string _replicaId = Guid.NewGuid().ToString("n");

    private RedisKey LockKey => _prefix + "lock";
    private RedisKey TargetsKey => _prefix + "targets";
    private RedisKey VersionsKey => _prefix + "versions";
    private RedisChannel EventsChannel => RedisChannel.Literal(_prefix + "events");

    public async Task SetBaselineAsync(string path, string version) =>
        await (await DatabaseAsync().ConfigureAwait(false)).HashSetAsync(VersionsKey, VersionField(path), version, When.NotExists).ConfigureAwait(false);

    public async Task<string?> GetKnownVersionAsync(string path) =>
        await (await DatabaseAsync().ConfigureAwait(false)).HashGetAsync(VersionsKey, VersionField(path)).ConfigureAwait(false);

    public async Task SetKnownVersionAsync(string path, string version) =>
        await (await DatabaseAsync().ConfigureAwait(false)).HashSetAsync(VersionsKey, VersionField(path), version).ConfigureAwait(false);

    // HGET and a conditional HSET in one script, so the poller and a write cannot both announce one version.
    private const string AdvanceScript = """
        local known = redis.call('HGET', KEYS[1], ARGV[1])
        if known and known ~= ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
        return known
        """;

    public async Task<string?> AdvanceKnownVersionAsync(string path, string version)
    {
        var result = await (await DatabaseAsync().ConfigureAwait(false))
            .ScriptEvaluateAsync(AdvanceScript, [VersionsKey], [VersionField(path), version]).ConfigureAwait(false);
        return result.IsNull ? null : (string?)result;
    }

    public async Task RegisterTargetsAsync(IReadOnlyList<WatchTarget> targets)
    {
        if (targets.Count == 0)
        {
            return;
        }
        var entries = targets.Select(t =>
        {
            var field = auditor.Hmac((t.IsPrefix ? "watch-prefix\0" : "watch-path\0") + t.Path);
            return new HashEntry(field, keys.Seal("watch-target:" + field, JsonSerializer.SerializeToUtf8Bytes(t, WatchJsonContext.Default.WatchTarget)));
        }).ToArray();
        await (await DatabaseAsync().ConfigureAwait(false)).HashSetAsync(TargetsKey, entries).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<WatchTarget>> LoadTargetsAsync(IReadOnlyList<WatchTarget> local, DateTimeOffset now)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var settings = options.Value;
        var stale = settings.MountIntervals.Values.Append(settings.PollInterval).Max() * 3 + TimeSpan.FromSeconds(10);
        var targets = new List<WatchTarget>();
        foreach (var entry in await database.HashGetAllAsync(TargetsKey).ConfigureAwait(false))
        {
            var field = entry.Name.ToString();
            if (keys.TryUnseal("watch-target:" + field, (byte[])entry.Value!, out var plaintext, out _) != UnsealFailure.None || plaintext is null
                || JsonSerializer.Deserialize(plaintext, WatchJsonContext.Default.WatchTarget) is not { } target)
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

    public async Task<bool> TryBecomePollerAsync(TimeSpan hold)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
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

    public async Task PublishAsync(WatchMessage message)
    {
        var payload = keys.Seal("watch-event", JsonSerializer.SerializeToUtf8Bytes(message, WatchJsonContext.Default.WatchMessage));
        await (await redis.GetAsync().ConfigureAwait(false)).GetSubscriber().PublishAsync(EventsChannel, payload).ConfigureAwait(false);
    }

    public async Task SubscribeAsync(Func<WatchMessage, Task> deliver)
    {
        var subscriber = (await redis.GetAsync().ConfigureAwait(false)).GetSubscriber();
        await subscriber.SubscribeAsync(EventsChannel, (channel, payload) => _ = OnPublishedAsync(payload, deliver)).ConfigureAwait(false);
    }

    private async Task OnPublishedAsync(RedisValue payload, Func<WatchMessage, Task> deliver)
    {
        try
        {
            if (keys.TryUnseal("watch-event", (byte[])payload!, out var plaintext, out _) != UnsealFailure.None || plaintext is null
                || JsonSerializer.Deserialize(plaintext, WatchJsonContext.Default.WatchMessage) is not { } message)
            {
                LogBadMessage();
                return;
            }
            await deliver(message).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogDeliveryFailed(ex.GetType().Name);
        }
    }

    private string VersionField(string path) => auditor.Hmac("watch-version\0" + path);

    private async Task<IDatabase> DatabaseAsync() => (await redis.GetAsync().ConfigureAwait(false)).GetDatabase();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped a watch message that could not be unsealed")]
    private partial void LogBadMessage();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Delivering a watch message failed ({ErrorType})")]
    private partial void LogDeliveryFailed(string errorType);
}
