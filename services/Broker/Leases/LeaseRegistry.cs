using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// Where leases are recorded, so any replica can take over a lease's renewals. <see cref="RedisLeaseRegistry"/>
/// with a Redis, <see cref="InMemoryLeaseRegistry"/> without (one replica). Ownership (replica and stream) is
/// kept apart from the record and changed atomically: a replica releasing a lease never undoes a take-over.
/// </summary>
public interface ILeaseRegistry
{
    /// <summary>The record with its current owner ("" when no stream holds it), or null.</summary>
    Task<LeaseRecord?> GetAsync(string leaseId);

    /// <summary>Writes the record's lease facts (expiry ...); ownership is not touched.</summary>
    Task SaveAsync(LeaseRecord record);

    Task DeleteAsync(string leaseId);

    /// <summary>Makes <paramref name="owner"/>/<paramref name="streamId"/> the holder and takes the lease off the waiting list.</summary>
    Task TakeOverAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt);

    /// <summary>
    /// If <paramref name="owner"/>/<paramref name="streamId"/> still holds the lease, leaves it ownerless and, with
    /// <paramref name="revokeAt"/>, puts it on the waiting list; true when it did.
    /// </summary>
    Task<bool> ReleaseAsync(string leaseId, string owner, string streamId, DateTimeOffset? revokeAt);

    /// <summary>Puts a lease (back) on the waiting list.</summary>
    Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt);

    /// <summary>Leases whose grace period is over, as registry keys for <see cref="GetByKeyAsync"/> and <see cref="ClaimOrphanKeyAsync"/>.</summary>
    Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit);

    Task<LeaseRecord?> GetByKeyAsync(string key);

    /// <summary>Takes a due lease off the waiting list; only the one caller that gets true decides its fate.</summary>
    Task<bool> ClaimOrphanKeyAsync(string key);
}

/// <summary>The registry of a broker without Redis: one process, dictionaries under one lock.</summary>
public sealed class InMemoryLeaseRegistry(AccessAuditor auditor) : ILeaseRegistry
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LeaseRecord> _records = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _owners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _orphans = new(StringComparer.Ordinal);

    private string Key(string leaseId) => auditor.Hmac(leaseId);

    public Task<LeaseRecord?> GetAsync(string leaseId) => GetByKeyAsync(Key(leaseId));

    public Task<LeaseRecord?> GetByKeyAsync(string key)
    {
        lock (_gate)
        {
            if (!_records.TryGetValue(key, out var record))
            {
                return Task.FromResult<LeaseRecord?>(null);
            }
            var owner = _owners.GetValueOrDefault(key, "").Split(' ');
            return Task.FromResult<LeaseRecord?>(record with { Owner = owner[0], StreamId = owner.Length > 1 ? owner[1] : "" });
        }
    }

    public Task SaveAsync(LeaseRecord record)
    {
        lock (_gate)
        {
            _records[Key(record.LeaseId)] = record with { Owner = "", StreamId = "" };
        }
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string leaseId)
    {
        var key = Key(leaseId);
        lock (_gate)
        {
            _records.Remove(key);
            _owners.Remove(key);
            _orphans.Remove(key);
        }
        return Task.CompletedTask;
    }

    public Task TakeOverAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt)
    {
        var key = Key(leaseId);
        lock (_gate)
        {
            _owners[key] = owner + " " + streamId;
            _orphans.Remove(key);
        }
        return Task.CompletedTask;
    }

    public Task<bool> ReleaseAsync(string leaseId, string owner, string streamId, DateTimeOffset? revokeAt)
    {
        var key = Key(leaseId);
        lock (_gate)
        {
            if (_owners.GetValueOrDefault(key) != owner + " " + streamId)
            {
                return Task.FromResult(false);
            }
            _owners.Remove(key);
            if (revokeAt is { } at)
            {
                _orphans[key] = at;
            }
            return Task.FromResult(true);
        }
    }

    public Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt)
    {
        lock (_gate)
        {
            _orphans[Key(leaseId)] = revokeAt;
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<string>>([.. _orphans.Where(o => o.Value <= now).Take(limit).Select(o => o.Key)]);
        }
    }

    public Task<bool> ClaimOrphanKeyAsync(string key)
    {
        lock (_gate)
        {
            return Task.FromResult(_orphans.Remove(key));
        }
    }
}

/// <summary>
/// The shared registry: one sealed string per lease under <c>{prefix}:lease:{hmac(lease id)}</c> (expiring a
/// minute after the lease), its holder under <c>{prefix}:lease-owner:{hmac}</c> (random replica and stream ids,
/// changed by Lua scripts so take-over and release are atomic), and a sorted set <c>{prefix}:lease-orphans</c>
/// of HMACs scored by revoke time. Redis holds no readable lease id, path or caller, and never any credential.
/// </summary>
public sealed class RedisLeaseRegistry(RedisConnection connection, CacheKeyRing keys, AccessAuditor auditor, IOptions<CacheOptions> cacheOptions,
    TimeProvider time) : ILeaseRegistry
{
    private const string TakeOverScript = """
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZREM', KEYS[2], ARGV[3])
        return 1
        """;

    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
        return 1
        """;

    private readonly string _prefix = cacheOptions.Value.KeyPrefix + ":lease:";
    private readonly string _ownerPrefix = cacheOptions.Value.KeyPrefix + ":lease-owner:";
    private readonly RedisKey _orphans = cacheOptions.Value.KeyPrefix + ":lease-orphans";

    private async Task<IDatabase> DatabaseAsync() => (await connection.GetAsync().ConfigureAwait(false)).GetDatabase();

    private string Key(string leaseId) => auditor.Hmac(leaseId);

    public Task<LeaseRecord?> GetAsync(string leaseId) => GetByKeyAsync(Key(leaseId));

    public async Task<LeaseRecord?> GetByKeyAsync(string key)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var values = await database.StringGetAsync([_prefix + key, _ownerPrefix + key]).ConfigureAwait(false);
        var sealedRecord = (byte[]?)values[0];
        if (sealedRecord is null || keys.TryUnseal(_prefix + key, sealedRecord, out var plaintext, out _) != UnsealFailure.None || plaintext is null
            || JsonSerializer.Deserialize(plaintext, LeaseJsonContext.Default.LeaseRecord) is not { } record)
        {
            return null;
        }
        var owner = ((string?)values[1] ?? "").Split(' ');
        return record with { Owner = owner[0], StreamId = owner.Length > 1 ? owner[1] : "" };
    }

    public async Task SaveAsync(LeaseRecord record)
    {
        var key = _prefix + Key(record.LeaseId);
        var sealedRecord = keys.Seal(key, JsonSerializer.SerializeToUtf8Bytes(record with { Owner = "", StreamId = "" }, LeaseJsonContext.Default.LeaseRecord));
        var database = await DatabaseAsync().ConfigureAwait(false);
        var lifetime = Lifetime(record.ExpiresAt);
        await database.StringSetAsync(key, sealedRecord, lifetime).ConfigureAwait(false);
        await database.KeyExpireAsync(_ownerPrefix + Key(record.LeaseId), lifetime).ConfigureAwait(false);
    }

    private TimeSpan Lifetime(DateTimeOffset expiresAt)
    {
        var lifetime = expiresAt - time.GetUtcNow() + TimeSpan.FromMinutes(1);
        return lifetime > TimeSpan.Zero ? lifetime : TimeSpan.FromMinutes(1);
    }

    public async Task DeleteAsync(string leaseId)
    {
        var key = Key(leaseId);
        var database = await DatabaseAsync().ConfigureAwait(false);
        await database.KeyDeleteAsync([_prefix + key, _ownerPrefix + key]).ConfigureAwait(false);
        await database.SortedSetRemoveAsync(_orphans, key).ConfigureAwait(false);
    }

    public async Task TakeOverAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt)
    {
        var key = Key(leaseId);
        await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(TakeOverScript, [_ownerPrefix + key, _orphans],
            [owner + " " + streamId, (long)Lifetime(expiresAt).TotalMilliseconds, key]).ConfigureAwait(false);
    }

    public async Task<bool> ReleaseAsync(string leaseId, string owner, string streamId, DateTimeOffset? revokeAt)
    {
        var key = Key(leaseId);
        var released = await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(ReleaseScript, [_ownerPrefix + key, _orphans],
            [owner + " " + streamId, revokeAt is { } at ? at.ToUnixTimeMilliseconds() : "", key]).ConfigureAwait(false);
        return (long)released == 1;
    }

    public async Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetAddAsync(_orphans, Key(leaseId), revokeAt.ToUnixTimeMilliseconds()).ConfigureAwait(false);

    public async Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit)
    {
        var due = await (await DatabaseAsync().ConfigureAwait(false))
            .SortedSetRangeByScoreAsync(_orphans, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: limit).ConfigureAwait(false);
        return [.. due.Select(d => d.ToString())];
    }

    public async Task<bool> ClaimOrphanKeyAsync(string key) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetRemoveAsync(_orphans, key).ConfigureAwait(false);
}
