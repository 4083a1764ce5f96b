using SecretsBroker.Broker.Audit;

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

    /// <summary>
    /// Makes <paramref name="owner"/>/<paramref name="streamId"/> the holder again, only if nobody holds the lease (a survivor
    /// handed it to the grace period while this replica was silent); true when it did. Never undoes another stream's take-over.
    /// </summary>
    Task<bool> ReclaimAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt);

    /// <summary>Records that <paramref name="replicaId"/> is alive; false when the registry did not know it (its first beat, or survivors found it silent).</summary>
    Task<bool> HeartbeatAsync(string replicaId, DateTimeOffset now);

    /// <summary>Replicas (never <paramref name="selfId"/>) whose last beat is before <paramref name="silentSince"/>, each handed to exactly one caller.</summary>
    Task<IReadOnlyList<string>> ClaimSilentReplicasAsync(string selfId, DateTimeOffset silentSince, int limit);

    /// <summary>Puts every lease <paramref name="replicaId"/> still holds on the waiting list, as if its streams had ended; how many.</summary>
    Task<int> OrphanLeasesOfAsync(string replicaId, DateTimeOffset revokeAt);
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

    public Task<bool> ReclaimAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt)
    {
        var key = Key(leaseId);
        lock (_gate)
        {
            if (_owners.ContainsKey(key))
            {
                return Task.FromResult(false);
            }
            _owners[key] = owner + " " + streamId;
            _orphans.Remove(key);
            return Task.FromResult(true);
        }
    }

    // One process: no other replica can fall silent, and this one is always known.
    public Task<bool> HeartbeatAsync(string replicaId, DateTimeOffset now) => Task.FromResult(true);

    public Task<IReadOnlyList<string>> ClaimSilentReplicasAsync(string selfId, DateTimeOffset silentSince, int limit) =>
        Task.FromResult<IReadOnlyList<string>>([]);

    public Task<int> OrphanLeasesOfAsync(string replicaId, DateTimeOffset revokeAt) => Task.FromResult(0);
}
