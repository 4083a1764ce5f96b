using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// The per-path rotation lock shared by the replicas, and the outcome the holder leaves for those that waited.
/// Redis when one is configured (<see cref="RedisRotationLocks"/>); with one broker the in-process single flight is the lock.
/// </summary>
public interface IRotationLocks
{
    /// <summary>
    /// The id of the rotation whose outcome <paramref name="key"/> holds now (null when none). Read before
    /// <see cref="TryAcquireAsync"/>, it tells <see cref="WaitForHolderAsync"/> which outcomes came after this caller arrived.
    /// </summary>
    Task<string?> LastOutcomeIdAsync(string key);

    /// <summary>Takes the lock of <paramref name="key"/> for rotation <paramref name="rotationId"/>; null when another replica holds it.</summary>
    Task<IAsyncDisposable?> TryAcquireAsync(string key, string rotationId);

    /// <summary>Leaves the holder's outcome for waiters (before the lock is released).</summary>
    Task PublishOutcomeAsync(string key, string rotationId, RotationOutcome outcome);

    /// <summary>
    /// Waits for an outcome newer than <paramref name="lastOutcomeId"/>: the current holder's, or that of any holder after it.
    /// Null when the lock is free without one (a holder that died): the caller tries to take the lock itself.
    /// </summary>
    Task<RotationOutcome?> WaitForHolderAsync(string key, string? lastOutcomeId, CancellationToken cancellationToken);
}

/// <summary>A finished rotation as waiters receive it: the result, or the refusal (status and safe message).</summary>
public sealed record RotationOutcome(RotationResult? Result, BrokerErrorKind? ErrorKind, string? ErrorMessage)
{
    public RotationResult ResultOrThrow() => Result ?? throw new BrokerException(ErrorKind ?? BrokerErrorKind.Unavailable, ErrorMessage ?? "the rotation failed");
}

/// <summary>
/// One broker: the locks live in this process (the single flight already joins concurrent calls of one path; the lock
/// keeps a recovery or a scheduled pass from running beside a rotation of the same path).
/// </summary>
public sealed class InProcessRotationLocks : IRotationLocks
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Holder, TaskCompletionSource<RotationOutcome?> Done)> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RotationOutcome> _outcomes = new(StringComparer.Ordinal);

    // The holder's outcome reaches its waiters through the holder's own completion, so no outcome id is needed here.
    public Task<string?> LastOutcomeIdAsync(string key) => Task.FromResult<string?>(null);

    public Task<IAsyncDisposable?> TryAcquireAsync(string key, string rotationId)
    {
        lock (_gate)
        {
            if (_held.ContainsKey(key))
            {
                return Task.FromResult<IAsyncDisposable?>(null);
            }
            _held[key] = (rotationId, new TaskCompletionSource<RotationOutcome?>(TaskCreationOptions.RunContinuationsAsynchronously));
            return Task.FromResult<IAsyncDisposable?>(new Held(this, key));
        }
    }

    public Task PublishOutcomeAsync(string key, string rotationId, RotationOutcome outcome)
    {
        lock (_gate)
        {
            _outcomes[key] = outcome;
        }
        return Task.CompletedTask;
    }

    public Task<RotationOutcome?> WaitForHolderAsync(string key, string? lastOutcomeId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _held.TryGetValue(key, out var held) ? held.Done.Task.WaitAsync(cancellationToken) : Task.FromResult<RotationOutcome?>(null);
        }
    }

    private void Release(string key)
    {
        TaskCompletionSource<RotationOutcome?> done;
        RotationOutcome? outcome;
        lock (_gate)
        {
            done = _held[key].Done;
            _held.Remove(key);
            _outcomes.Remove(key, out outcome);
        }
        done.SetResult(outcome);
    }

    private sealed class Held(InProcessRotationLocks owner, string key) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            owner.Release(key);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// Rotation locks in Redis, as the watch poller's lock (SET NX PX, renewed while held; RedisWatchState.TryBecomePollerAsync):
/// the value is the rotation id, released only by its holder (compare-and-delete). The outcome is sealed with the cache key
/// ring under the rotation id for a minute. Keys are HMACs of paths; nothing readable reaches Redis.
/// </summary>
public sealed class RedisRotationLocks(RedisConnection redis, CacheKeyRing keys, IOptions<CacheOptions> cacheOptions,
    IOptions<RotationEngineOptions> options, TimeProvider time) : IRotationLocks
{
    private const string ReleaseScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    private const string RenewScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
    private static readonly TimeSpan OutcomeLifetime = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan WaitStep = TimeSpan.FromMilliseconds(50);

    private readonly string _prefix = cacheOptions.Value.KeyPrefix + ":rotation:";

    public async Task<IAsyncDisposable?> TryAcquireAsync(string key, string rotationId)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var hold = options.Value.LockHold;
        if (!await database.StringSetAsync(LockKey(key), rotationId, hold, When.NotExists).ConfigureAwait(false))
        {
            return null;
        }
        return new Held(database, LockKey(key), rotationId, hold, time);
    }

    public async Task<string?> LastOutcomeIdAsync(string key) =>
        (await ReadOutcomeAsync(await DatabaseAsync().ConfigureAwait(false), key).ConfigureAwait(false))?.RotationId;

    public async Task PublishOutcomeAsync(string key, string rotationId, RotationOutcome outcome)
    {
        var sealedOutcome = keys.Seal("rotation-outcome",
            JsonSerializer.SerializeToUtf8Bytes(new PublishedOutcome(rotationId, outcome), RotationJsonContext.Default.PublishedOutcome));
        await (await DatabaseAsync().ConfigureAwait(false)).StringSetAsync(OutcomeKey(key), sealedOutcome, OutcomeLifetime).ConfigureAwait(false);
    }

    public async Task<RotationOutcome?> WaitForHolderAsync(string key, string? lastOutcomeId, CancellationToken cancellationToken)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        while (true)
        {
            // The lock before the outcome: a holder leaves its outcome before it releases, so a free lock seen first misses
            // none. Any outcome newer than the caller's arrival is an answer, also one of a holder that came and went between
            // two looks (a waiter that only knew the previous holder would otherwise rotate a second time).
            var held = await database.KeyExistsAsync(LockKey(key)).ConfigureAwait(false);
            if (await ReadOutcomeAsync(database, key).ConfigureAwait(false) is { } latest && latest.RotationId != lastOutcomeId)
            {
                return latest.Outcome;
            }
            if (!held)
            {
                return null;
            }
            await Task.Delay(WaitStep, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<PublishedOutcome?> ReadOutcomeAsync(IDatabase database, string key)
    {
        var payload = await database.StringGetAsync(OutcomeKey(key)).ConfigureAwait(false);
        // One that no longer unseals (a replaced key ring) counts as none: the caller then takes the lock or waits on.
        return !payload.IsNull && keys.TryUnseal("rotation-outcome", (byte[])payload!, out var plaintext, out _) == UnsealFailure.None && plaintext is not null
            ? JsonSerializer.Deserialize(plaintext, RotationJsonContext.Default.PublishedOutcome)
            : null;
    }

    private RedisKey LockKey(string key) => _prefix + "lock:" + key;

    private RedisKey OutcomeKey(string key) => _prefix + "outcome:" + key;

    private async Task<IDatabase> DatabaseAsync() => (await redis.GetAsync().ConfigureAwait(false)).GetDatabase();

    private sealed class Held : IAsyncDisposable
    {
        private readonly IDatabase _database;
        private readonly RedisKey _key;
        private readonly string _owner;
        private readonly ITimer _renewal;

        public Held(IDatabase database, RedisKey key, string owner, TimeSpan hold, TimeProvider time)
        {
            _database = database;
            _key = key;
            _owner = owner;
            // Renewed every third of the hold while the rotation runs; a crashed holder's lock lapses after the hold.
            _renewal = time.CreateTimer(_ => _ = RenewAsync(hold), null, hold / 3, hold / 3);
        }

        private async Task RenewAsync(TimeSpan hold)
        {
            try
            {
                await _database.ScriptEvaluateAsync(RenewScript, [_key], [_owner, (long)hold.TotalMilliseconds]).ConfigureAwait(false);
            }
            catch (RedisException)
            {
                // Retried at the next tick; a lost lock shows as a second holder's check-and-set failing on promotion.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _renewal.DisposeAsync().ConfigureAwait(false);
            await _database.ScriptEvaluateAsync(ReleaseScript, [_key], [_owner]).ConfigureAwait(false);
        }
    }
}

/// <summary>The last outcome of a path's rotations in Redis, with the rotation it came from.</summary>
internal sealed record PublishedOutcome(string RotationId, RotationOutcome Outcome);

[JsonSerializable(typeof(PublishedOutcome))]
internal sealed partial class RotationJsonContext : JsonSerializerContext;
