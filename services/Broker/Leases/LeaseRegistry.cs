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
/// with a Redis, <see cref="InMemoryLeaseRegistry"/> without (one replica).
/// </summary>
public interface ILeaseRegistry
{
    Task<LeaseRecord?> GetAsync(string leaseId);

    Task SaveAsync(LeaseRecord record);

    Task DeleteAsync(string leaseId);

    /// <summary>Marks a lease as waiting for a re-attach until <paramref name="revokeAt"/>.</summary>
    Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt);

    /// <summary>Takes a lease off the waiting list; true when it was on it (the caller now decides its fate).</summary>
    Task<bool> RemoveOrphanAsync(string leaseId);

    /// <summary>Leases whose grace period is over, as registry keys for <see cref="GetByKeyAsync"/> and <see cref="ClaimOrphanKeyAsync"/>.</summary>
    Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit);

    Task<LeaseRecord?> GetByKeyAsync(string key);

    /// <summary>Takes a due lease off the waiting list; only the one caller that gets true revokes it.</summary>
    Task<bool> ClaimOrphanKeyAsync(string key);
}

/// <summary>The registry of a broker without Redis: one process, one dictionary.</summary>
public sealed class InMemoryLeaseRegistry(AccessAuditor auditor) : ILeaseRegistry
{
    private readonly ConcurrentDictionary<string, LeaseRecord> _records = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _orphans = new(StringComparer.Ordinal);

    private string Key(string leaseId) => auditor.Hmac(leaseId);

    public Task<LeaseRecord?> GetAsync(string leaseId) => Task.FromResult(_records.GetValueOrDefault(Key(leaseId)));

    public Task<LeaseRecord?> GetByKeyAsync(string key) => Task.FromResult(_records.GetValueOrDefault(key));

    public Task SaveAsync(LeaseRecord record)
    {
        _records[Key(record.LeaseId)] = record;
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string leaseId)
    {
        _records.TryRemove(Key(leaseId), out _);
        _orphans.TryRemove(Key(leaseId), out _);
        return Task.CompletedTask;
    }

    public Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt)
    {
        _orphans[Key(leaseId)] = revokeAt;
        return Task.CompletedTask;
    }

    public Task<bool> RemoveOrphanAsync(string leaseId) => Task.FromResult(_orphans.TryRemove(Key(leaseId), out _));

    public Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit) =>
        Task.FromResult<IReadOnlyList<string>>([.. _orphans.Where(o => o.Value <= now).Take(limit).Select(o => o.Key)]);

    public Task<bool> ClaimOrphanKeyAsync(string key) => Task.FromResult(_orphans.TryRemove(key, out _));
}

/// <summary>
/// The shared registry: one sealed string per lease under <c>{prefix}:lease:{hmac(lease id)}</c> (expiring
/// a minute after the lease), and a sorted set <c>{prefix}:lease-orphans</c> of HMACs scored by revoke time.
/// Redis holds no readable lease id, path or caller, and never any credential.
/// </summary>
public sealed class RedisLeaseRegistry(RedisConnection connection, CacheKeyRing keys, AccessAuditor auditor, IOptions<CacheOptions> cacheOptions,
    TimeProvider time) : ILeaseRegistry
{
    private readonly string _prefix = cacheOptions.Value.KeyPrefix + ":lease:";
    private readonly RedisKey _orphans = cacheOptions.Value.KeyPrefix + ":lease-orphans";

    private async Task<IDatabase> DatabaseAsync() => (await connection.GetAsync().ConfigureAwait(false)).GetDatabase();

    private string Key(string leaseId) => _prefix + auditor.Hmac(leaseId);

    public Task<LeaseRecord?> GetAsync(string leaseId) => GetByRedisKeyAsync(Key(leaseId));

    public Task<LeaseRecord?> GetByKeyAsync(string key) => GetByRedisKeyAsync(_prefix + key);

    private async Task<LeaseRecord?> GetByRedisKeyAsync(string key)
    {
        var sealedRecord = (byte[]?)await (await DatabaseAsync().ConfigureAwait(false)).StringGetAsync(key).ConfigureAwait(false);
        if (sealedRecord is null || keys.TryUnseal(key, sealedRecord, out var plaintext, out _) != UnsealFailure.None || plaintext is null)
        {
            return null;
        }
        return JsonSerializer.Deserialize(plaintext, LeaseJsonContext.Default.LeaseRecord);
    }

    public async Task SaveAsync(LeaseRecord record)
    {
        var key = Key(record.LeaseId);
        var sealedRecord = keys.Seal(key, JsonSerializer.SerializeToUtf8Bytes(record, LeaseJsonContext.Default.LeaseRecord));
        var lifetime = record.ExpiresAt - time.GetUtcNow() + TimeSpan.FromMinutes(1);
        await (await DatabaseAsync().ConfigureAwait(false)).StringSetAsync(key, sealedRecord, lifetime > TimeSpan.Zero ? lifetime : TimeSpan.FromMinutes(1))
            .ConfigureAwait(false);
    }

    public async Task DeleteAsync(string leaseId)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        await database.KeyDeleteAsync(Key(leaseId)).ConfigureAwait(false);
        await database.SortedSetRemoveAsync(_orphans, auditor.Hmac(leaseId)).ConfigureAwait(false);
    }

    public async Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetAddAsync(_orphans, auditor.Hmac(leaseId), revokeAt.ToUnixTimeMilliseconds()).ConfigureAwait(false);

    public async Task<bool> RemoveOrphanAsync(string leaseId) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetRemoveAsync(_orphans, auditor.Hmac(leaseId)).ConfigureAwait(false);

    public async Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit)
    {
        var due = await (await DatabaseAsync().ConfigureAwait(false))
            .SortedSetRangeByScoreAsync(_orphans, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: limit).ConfigureAwait(false);
        return [.. due.Select(d => d.ToString())];
    }

    public async Task<bool> ClaimOrphanKeyAsync(string key) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetRemoveAsync(_orphans, key).ConfigureAwait(false);
}
