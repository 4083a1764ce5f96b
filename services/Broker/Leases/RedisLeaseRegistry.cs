using System.Text.Json;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// The shared registry. Every key carries the hash tag <c>{prefix:leases}</c>, so each script's keys share one Redis
/// Cluster slot: one sealed string per lease under <c>{prefix:leases}:lease:{hmac(lease id)}</c> (expiring a minute after
/// the lease), its holder under <c>...:lease-owner:{hmac}</c> (random replica and stream ids, changed by Lua scripts so
/// take-over and release are atomic), a sorted set <c>...:lease-orphans</c> of HMACs scored by revoke time, a sorted set
/// <c>...:replicas</c> of replica ids scored by their last heartbeat, and per replica a set <c>...:replica-leases:{id}</c>
/// of the HMACs it holds, so a survivor can hand a silent replica's leases to the grace period. Redis holds no readable
/// lease id, path or caller, and never any credential.
/// </summary>
public sealed class RedisLeaseRegistry(RedisConnection connection, CacheKeyRing keys, AccessAuditor auditor, IOptions<CacheOptions> cacheOptions,
    TimeProvider time) : ILeaseRegistry
{
    // KEYS: owner, orphans, the new holder's lease set. ARGV: holder, owner key lifetime (ms), lease HMAC.
    private const string TakeOverScript = """
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZREM', KEYS[2], ARGV[3])
        redis.call('SADD', KEYS[3], ARGV[3])
        return 1
        """;

    // As TakeOverScript, only when nobody holds the lease.
    private const string ReclaimScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZREM', KEYS[2], ARGV[3])
        redis.call('SADD', KEYS[3], ARGV[3])
        return 1
        """;

    // KEYS: owner, orphans, the releasing replica's lease set. ARGV: holder, revoke time (ms) or '', lease HMAC.
    private const string ReleaseScript = """
        redis.call('SREM', KEYS[3], ARGV[3])
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
        return 1
        """;

    // KEYS: owner, orphans. ARGV: "<replica> " (holder prefix), revoke time (ms), lease HMAC.
    private const string OrphanIfHeldByScript = """
        local holder = redis.call('GET', KEYS[1])
        if not holder or string.sub(holder, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        return 1
        """;

    private readonly string _tag = "{" + cacheOptions.Value.KeyPrefix + ":leases}";

    private string RecordKey(string key) => _tag + ":lease:" + key;

    private string OwnerKey(string key) => _tag + ":lease-owner:" + key;

    private RedisKey Orphans => _tag + ":lease-orphans";

    private RedisKey Replicas => _tag + ":replicas";

    private RedisKey LeasesOf(string replicaId) => _tag + ":replica-leases:" + replicaId;

    private async Task<IDatabase> DatabaseAsync() => (await connection.GetAsync().ConfigureAwait(false)).GetDatabase();

    private string Key(string leaseId) => auditor.Hmac(leaseId);

    public Task<LeaseRecord?> GetAsync(string leaseId) => GetByKeyAsync(Key(leaseId));

    public async Task<LeaseRecord?> GetByKeyAsync(string key)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var values = await database.StringGetAsync([RecordKey(key), OwnerKey(key)]).ConfigureAwait(false);
        var sealedRecord = (byte[]?)values[0];
        if (sealedRecord is null || keys.TryUnseal(RecordKey(key), sealedRecord, out var plaintext, out _) != UnsealFailure.None || plaintext is null
            || JsonSerializer.Deserialize(plaintext, LeaseJsonContext.Default.LeaseRecord) is not { } record)
        {
            return null;
        }
        var owner = ((string?)values[1] ?? "").Split(' ');
        return record with { Owner = owner[0], StreamId = owner.Length > 1 ? owner[1] : "" };
    }

    public async Task SaveAsync(LeaseRecord record)
    {
        var key = Key(record.LeaseId);
        var sealedRecord = keys.Seal(RecordKey(key), JsonSerializer.SerializeToUtf8Bytes(record with { Owner = "", StreamId = "" }, LeaseJsonContext.Default.LeaseRecord));
        var database = await DatabaseAsync().ConfigureAwait(false);
        var lifetime = Lifetime(record.ExpiresAt);
        await database.StringSetAsync(RecordKey(key), sealedRecord, lifetime).ConfigureAwait(false);
        await database.KeyExpireAsync(OwnerKey(key), lifetime).ConfigureAwait(false);
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
        // The holder's lease set loses the entry too, so a long-lived replica's set does not collect revoked leases.
        if (((string?)await database.StringGetAsync(OwnerKey(key)).ConfigureAwait(false))?.Split(' ')[0] is { Length: > 0 } holder)
        {
            await database.SetRemoveAsync(LeasesOf(holder), key).ConfigureAwait(false);
        }
        await database.KeyDeleteAsync([RecordKey(key), OwnerKey(key)]).ConfigureAwait(false);
        await database.SortedSetRemoveAsync(Orphans, key).ConfigureAwait(false);
    }

    public async Task TakeOverAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt)
    {
        var key = Key(leaseId);
        await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(TakeOverScript, [OwnerKey(key), Orphans, LeasesOf(owner)],
            [owner + " " + streamId, (long)Lifetime(expiresAt).TotalMilliseconds, key]).ConfigureAwait(false);
    }

    public async Task<bool> ReclaimAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt)
    {
        var key = Key(leaseId);
        var reclaimed = await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(ReclaimScript, [OwnerKey(key), Orphans, LeasesOf(owner)],
            [owner + " " + streamId, (long)Lifetime(expiresAt).TotalMilliseconds, key]).ConfigureAwait(false);
        return (long)reclaimed == 1;
    }

    public async Task<bool> ReleaseAsync(string leaseId, string owner, string streamId, DateTimeOffset? revokeAt)
    {
        var key = Key(leaseId);
        var released = await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(ReleaseScript, [OwnerKey(key), Orphans, LeasesOf(owner)],
            [owner + " " + streamId, revokeAt is { } at ? at.ToUnixTimeMilliseconds() : "", key]).ConfigureAwait(false);
        return (long)released == 1;
    }

    public async Task AddOrphanAsync(string leaseId, DateTimeOffset revokeAt) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetAddAsync(Orphans, Key(leaseId), revokeAt.ToUnixTimeMilliseconds()).ConfigureAwait(false);

    public async Task<IReadOnlyList<string>> DueOrphanKeysAsync(DateTimeOffset now, int limit)
    {
        var due = await (await DatabaseAsync().ConfigureAwait(false))
            .SortedSetRangeByScoreAsync(Orphans, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: limit).ConfigureAwait(false);
        return [.. due.Select(d => d.ToString())];
    }

    public async Task<bool> ClaimOrphanKeyAsync(string key) =>
        await (await DatabaseAsync().ConfigureAwait(false)).SortedSetRemoveAsync(Orphans, key).ConfigureAwait(false);

    public async Task<bool> HeartbeatAsync(string replicaId, DateTimeOffset now) =>
        // ZADD answers 1 for a member it added: the registry did not know this replica.
        !await (await DatabaseAsync().ConfigureAwait(false)).SortedSetAddAsync(Replicas, replicaId, now.ToUnixTimeMilliseconds()).ConfigureAwait(false);

    public async Task<IReadOnlyList<string>> ClaimSilentReplicasAsync(string selfId, DateTimeOffset silentSince, int limit)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var silent = await database.SortedSetRangeByScoreAsync(Replicas, double.NegativeInfinity, silentSince.ToUnixTimeMilliseconds(), take: limit)
            .ConfigureAwait(false);
        var claimed = new List<string>();
        foreach (var replica in silent.Select(r => r.ToString()).Where(r => r != selfId))
        {
            // ZREM succeeds for one survivor only: that one hands the replica's leases over.
            if (await database.SortedSetRemoveAsync(Replicas, replica).ConfigureAwait(false))
            {
                claimed.Add(replica);
            }
        }
        return claimed;
    }

    public async Task<int> OrphanLeasesOfAsync(string replicaId, DateTimeOffset revokeAt)
    {
        var database = await DatabaseAsync().ConfigureAwait(false);
        var orphaned = 0;
        await foreach (var member in database.SetScanAsync(LeasesOf(replicaId), pageSize: 256).ConfigureAwait(false))
        {
            var key = member.ToString();
            var result = await database.ScriptEvaluateAsync(OrphanIfHeldByScript, [OwnerKey(key), Orphans],
                [replicaId + " ", revokeAt.ToUnixTimeMilliseconds(), key]).ConfigureAwait(false);
            orphaned += (int)(long)result;
        }
        await database.KeyDeleteAsync(LeasesOf(replicaId)).ConfigureAwait(false);
        return orphaned;
    }
}
