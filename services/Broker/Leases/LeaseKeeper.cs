using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// Keeps the leases attached to this replica's KeepAlive streams alive: renews each at about 2/3 of its TTL (with
/// jitter), rotates it (fresh credentials first, the old lease revoked after the overlap) when its max TTL is near or
/// renewal is refused, and hands the leases of an ended stream to the grace period (<see cref="OrphanLeaseSweeper"/>).
/// Decisions are <see cref="RenewalPolicy"/>'s; timing goes through one <see cref="LeaseScheduler"/> and the
/// <see cref="TimeProvider"/>. Logs carry mounts and error types, never lease ids, paths or values.
/// </summary>
public sealed partial class LeaseKeeper(
    AccessGuard guard,
    LeaseRecords records,
    LeaseMetrics metrics,
    IOptions<LeaseOptions> options,
    TimeProvider time,
    ILogger<LeaseKeeper> logger) : BackgroundService
{
    private static readonly IReadOnlyDictionary<string, string> NoAttributes = new Dictionary<string, string>();

    private readonly LeaseOptions _options = options.Value;
    private readonly LeaseScheduler _scheduler = new(time);
    private readonly ConcurrentDictionary<string, LeaseState> _local = new(StringComparer.Ordinal);

    /// <summary>This process's identity as a lease owner in the registry.</summary>
    public string ReplicaId { get; } = Guid.NewGuid().ToString("n");

    /// <summary>Leases this replica keeps alive right now.</summary>
    public int AttachedCount => _local.Count;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        metrics.Meter.CreateObservableUpDownCounter("secretsbroker.lease.active",
            () => _local.Values.GroupBy(s => s.Mount).Select(g => new Measurement<long>(g.Count(), new KeyValuePair<string, object?>("mount", g.Key))),
            description: "Leases this replica keeps alive, by mount");
        return _scheduler.RunAsync(RunJobAsync, _options.MaxConcurrentOperations, stoppingToken);
    }

    public override void Dispose()
    {
        _scheduler.Dispose();
        base.Dispose();
    }

    /// <summary>Attaches a lease to a stream (taking it over from any other stream or replica); the outcome arrives as an event.</summary>
    public async Task AttachAsync(KeepAliveSession session, string leaseId)
    {
        var now = time.GetUtcNow();
        if (string.IsNullOrEmpty(leaseId) || leaseId.Length > 1024)
        {
            session.Send(LeaseNotice.Failed(leaseId, now, BrokerErrorKind.InvalidArgument, "lease ids are 1 to 1024 characters"));
            return;
        }
        if (session.Leases.TryGetValue(leaseId, out var held))
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Attached, now, held.ExpiresAt));
            return;
        }
        if (session.Leases.Count >= _options.MaxLeasesPerStream)
        {
            session.Send(LeaseNotice.Failed(leaseId, now, BrokerErrorKind.ResourceExhausted, $"a stream holds at most {_options.MaxLeasesPerStream} leases"));
            return;
        }
        LeaseRecord? record;
        try
        {
            record = await records.GetAsync(leaseId).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            session.Send(LeaseNotice.Failed(leaseId, now, ex.Kind, ex.Message));
            return;
        }
        if (record is null || !IsOwner(record, guard.OwnerKey(session.Caller)))
        {
            session.Send(LeaseNotice.Failed(leaseId, now, BrokerErrorKind.NotFound, "no such lease (or it has expired)"));
            return;
        }
        if (record.ExpiresAt <= now)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Expired, now, record.ExpiresAt));
            return;
        }
        Authorized<ICredentialIssuing> target;
        try
        {
            target = guard.Authorize<ICredentialIssuing>(session.Caller, Capability.Renew, record.Path, LeaseOperations.NotDynamic);
        }
        catch (BrokerException ex)
        {
            await guard.RefusedAsync(session.Access, new AuditEntry(AuditActions.Renew, record.Path) { LeaseId = leaseId }, ex, CancellationToken.None)
                .ConfigureAwait(false);
            session.Send(LeaseNotice.Failed(leaseId, now, ex.Kind, ex.Message));
            return;
        }
        var state = new LeaseState(leaseId, record.Path, record.Subject, target.Capability, target.Mount.Prefix, target.Name, session)
        {
            Identity = record.Identity,
            Ttl = record.Ttl,
            Renewable = record.Renewable,
            ExpiresAt = record.ExpiresAt,
        };
        if (!await records.TryTakeOverAsync(leaseId, ReplicaId, session.Id, record.ExpiresAt, state.Mount).ConfigureAwait(false))
        {
            session.Send(LeaseNotice.Failed(leaseId, now, BrokerErrorKind.Unavailable, "the lease registry is unavailable; attach again later"));
            return;
        }
        if (_local.TryGetValue(leaseId, out var previous))
        {
            Interlocked.Increment(ref previous.Generation);
            previous.Session?.Leases.TryRemove(leaseId, out _);
        }
        _local[leaseId] = state;
        session.Leases[leaseId] = state;
        if (session.Ended)
        {
            // The stream ended while this attach was in flight: treat the lease like the stream's others.
            await OrphanAsync(session, state).ConfigureAwait(false);
            return;
        }
        ScheduleRenewal(state);
        session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Attached, now, state.ExpiresAt));
    }

    /// <summary>Stops renewing a lease on this stream; it is not revoked and expires at its TTL.</summary>
    public async Task DetachAsync(KeepAliveSession session, string leaseId)
    {
        if (!session.Leases.TryRemove(leaseId, out var state))
        {
            return;
        }
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(leaseId, state));
        await records.TryReleaseAsync(leaseId, ReplicaId, session.Id, revokeAt: null, state.Mount).ConfigureAwait(false);
    }

    /// <summary>The stream is gone: its leases wait <see cref="LeaseOptions.GracePeriod"/> for a re-attach, then are revoked.</summary>
    public async Task StreamEndedAsync(KeepAliveSession session)
    {
        session.Ended = true;
        session.Events.Writer.TryComplete();
        foreach (var state in session.Leases.Values)
        {
            await OrphanAsync(session, state).ConfigureAwait(false);
        }
        session.Leases.Clear();
    }

    /// <summary>A lease was revoked through the API: stop keeping it and tell its stream.</summary>
    public void Revoked(string leaseId)
    {
        if (_local.TryRemove(leaseId, out var state))
        {
            Interlocked.Increment(ref state.Generation);
            state.Session?.Leases.TryRemove(leaseId, out _);
            state.Session?.Send(new LeaseNotice(leaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
        }
    }

    /// <summary>
    /// This replica was silent long enough for a survivor to hand its leases to the grace period: takes back every lease
    /// whose stream is still open here and that nobody else took over meanwhile. Returns how many.
    /// </summary>
    public async Task<int> ReclaimAsync()
    {
        var reclaimed = 0;
        foreach (var state in _local.Values)
        {
            if (state.Session is { Ended: false } session
                && await records.TryReclaimAsync(state.LeaseId, ReplicaId, session.Id, state.ExpiresAt, state.Mount).ConfigureAwait(false))
            {
                reclaimed++;
            }
        }
        return reclaimed;
    }

    private async Task OrphanAsync(KeepAliveSession session, LeaseState state)
    {
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
        // Atomic: if another replica or stream took the lease over meanwhile, this changes nothing.
        await records.TryReleaseAsync(state.LeaseId, ReplicaId, session.Id, time.GetUtcNow() + _options.GracePeriod, state.Mount).ConfigureAwait(false);
    }

    private void Drop(LeaseState state)
    {
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
        state.Session?.Leases.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
    }

    private async Task TryAuditAsync(AccessContext access, string action, LeaseState state)
    {
        try
        {
            await guard.AllowedAsync(access, Entry(action, state), CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            // Counted by the recorder; background lease work goes on (there is no caller to refuse).
        }
    }

    /// <summary>Whether <paramref name="ownerKey"/> owns the lease: the whole identity, never the subject alone (records without an owner key belong to nobody).</summary>
    internal static bool IsOwner(LeaseRecord record, string ownerKey) =>
        record.Identity.Length > 0 && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.ASCII.GetBytes(record.Identity), System.Text.Encoding.ASCII.GetBytes(ownerKey));

    private static AuditEntry Entry(string action, LeaseState state) => new(action, state.Path, state.Mount) { LeaseId = state.LeaseId };

    /// <summary>Whom background lease work acts for: the lease's subject, as the keeper.</summary>
    internal static AccessContext BackgroundAccess(string subject) => AccessContext.ForCaller(new CallerIdentity(subject, "lease-keeper", NoAttributes));

    [LoggerMessage(Level = LogLevel.Error, Message = "Scheduled lease work {Kind} failed unexpectedly ({ErrorType})")]
    private partial void LogJobFailed(string kind, string errorType);
}
