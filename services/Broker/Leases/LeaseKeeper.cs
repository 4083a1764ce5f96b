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
        if (record is null || record.Subject != session.Caller.Subject)
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

    private async Task OrphanAsync(KeepAliveSession session, LeaseState state)
    {
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
        // Atomic: if another replica or stream took the lease over meanwhile, this changes nothing.
        await records.TryReleaseAsync(state.LeaseId, ReplicaId, session.Id, time.GetUtcNow() + _options.GracePeriod, state.Mount).ConfigureAwait(false);
    }

    // ---- scheduled work ---------------------------------------------------------------------

    private void ScheduleRenewal(LeaseState state)
    {
        var due = RenewalPolicy.NextDue(state.Ttl, state.ExpiresAt, time.GetUtcNow(), _options, Random.Shared.NextDouble());
        _scheduler.Schedule(new ScheduledJob(due, state.Renewable ? JobKind.Renew : JobKind.Rotate, state, Volatile.Read(ref state.Generation)));
    }

    private async Task RunJobAsync(ScheduledJob job, TimeSpan lateness)
    {
        try
        {
            switch (job.Kind)
            {
                case JobKind.RevokeRotated:
                    await RevokeReplacedAsync(job.Lease!).ConfigureAwait(false);
                    break;
                case JobKind.Renew or JobKind.Rotate when IsCurrent(job):
                    if (job.Kind == JobKind.Renew)
                    {
                        metrics.RenewalStarted(lateness);
                    }
                    await RenewOrRotateAsync(job.Lease!, job.Kind == JobKind.Rotate).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex)
        {
            LogJobFailed(job.Kind.ToString(), ex.GetType().Name);
        }
    }

    private bool IsCurrent(ScheduledJob job) =>
        job.Lease is { } state && Volatile.Read(ref state.Generation) == job.Generation && _local.TryGetValue(state.LeaseId, out var current) && current == state;

    private async Task RenewOrRotateAsync(LeaseState state, bool rotate)
    {
        var session = state.Session!;
        // Another replica (or stream) may have taken the lease over, or it may have been revoked elsewhere.
        LeaseRecord? record;
        try
        {
            record = await records.GetAsync(state.LeaseId, state.Mount).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            record = new LeaseRecord(state.LeaseId, state.Path, state.Subject, state.Ttl, state.Renewable, state.ExpiresAt, ReplicaId, session.Id);
        }
        if (record is null)
        {
            Drop(state);
            session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
            return;
        }
        if (record.Owner != ReplicaId || record.StreamId != session.Id)
        {
            Drop(state);
            return;
        }
        var background = BackgroundAccess(state.Subject);
        if (!rotate)
        {
            try
            {
                var renewed = await state.Issuer.RenewAsync(state.LeaseId, state.Ttl, CancellationToken.None).ConfigureAwait(false);
                var now = time.GetUtcNow();
                metrics.Renewal(state.Mount, "renewed");
                state.ExpiresAt = now + renewed.Duration;
                await records.TrySaveAsync(record with { ExpiresAt = state.ExpiresAt }, state.Mount).ConfigureAwait(false);
                await TryAuditAsync(background, AuditActions.Renew, state).ConfigureAwait(false);
                session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Renewed, now, state.ExpiresAt));
                if (RenewalPolicy.AfterRenewal(state.Ttl, renewed.Duration, renewed.Renewable) == RenewalDecision.Reschedule)
                {
                    ScheduleRenewal(state);
                    return;
                }
                // Capped by the max TTL (or no longer renewable): the next renewal could not extend it; rotate now.
            }
            catch (BrokerException ex)
            {
                metrics.Renewal(state.Mount, "failed");
                if (RenewalPolicy.AfterRenewalFailure(ex.Kind) == RenewalDecision.RetryOrExpire)
                {
                    await guard.RefusedAsync(background, Entry(AuditActions.Renew, state), ex, CancellationToken.None).ConfigureAwait(false);
                    RetryOrExpire(state, JobKind.Renew, ex.Kind, "renewal failed: " + ex.Message);
                    return;
                }
                LogRenewalRefused(state.Mount, ex.Kind.Name());
            }
        }
        await RotateAsync(state, background).ConfigureAwait(false);
    }

    private async Task RotateAsync(LeaseState state, AccessContext background)
    {
        var session = state.Session!;
        IssuedCredentials fresh;
        try
        {
            fresh = await state.Issuer.IssueAsync(state.Role, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await guard.RefusedAsync(background, Entry(AuditActions.Rotate, state), ex, CancellationToken.None).ConfigureAwait(false);
            RetryOrExpire(state, JobKind.Rotate, ex.Kind, "rotation failed: " + ex.Message);
            return;
        }
        var now = time.GetUtcNow();
        var next = new LeaseState(fresh.LeaseId, state.Path, state.Subject, state.Issuer, state.Mount, state.Role, session)
        {
            Ttl = fresh.Duration,
            Renewable = fresh.Renewable,
            ExpiresAt = now + fresh.Duration,
        };
        await records.TrySaveAsync(new LeaseRecord(next.LeaseId, next.Path, next.Subject, next.Ttl, next.Renewable, next.ExpiresAt), state.Mount).ConfigureAwait(false);
        await records.TryTakeOverAsync(next.LeaseId, ReplicaId, session.Id, next.ExpiresAt, state.Mount).ConfigureAwait(false);
        Drop(state);
        _local[next.LeaseId] = next;
        session.Leases[next.LeaseId] = next;
        await TryAuditAsync(background, AuditActions.Rotate, next).ConfigureAwait(false);
        session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Rotated, now, next.ExpiresAt,
            new IssuedLease(next.LeaseId, next.Path, fresh.Data, next.Ttl, next.Renewable, next.ExpiresAt)));
        LogRotated(state.Mount);
        ScheduleRenewal(next);
        _scheduler.Schedule(new ScheduledJob(RenewalPolicy.RevokeReplacedAt(now, state.ExpiresAt, _options), JobKind.RevokeRotated, state, 0));
    }

    private async Task RevokeReplacedAsync(LeaseState old)
    {
        try
        {
            await old.Issuer.RevokeAsync(old.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind != BrokerErrorKind.NotFound)
        {
            await guard.RefusedAsync(BackgroundAccess(old.Subject), Entry(AuditActions.Revoke, old), ex, CancellationToken.None).ConfigureAwait(false);
            if (RenewalPolicy.CanRetry(time.GetUtcNow(), old.ExpiresAt, _options))
            {
                _scheduler.Schedule(new ScheduledJob(time.GetUtcNow() + _options.RetryDelay, JobKind.RevokeRotated, old, 0));
            }
            return;
        }
        await records.TryDeleteAsync(old.LeaseId, old.Mount).ConfigureAwait(false);
        await TryAuditAsync(BackgroundAccess(old.Subject), AuditActions.Revoke, old).ConfigureAwait(false);
        old.Session?.Send(new LeaseNotice(old.LeaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
        LogRevokedReplaced(old.Mount);
    }

    private void RetryOrExpire(LeaseState state, JobKind kind, BrokerErrorKind code, string message)
    {
        var now = time.GetUtcNow();
        var session = state.Session!;
        if (RenewalPolicy.CanRetry(now, state.ExpiresAt, _options))
        {
            session.Send(LeaseNotice.Failed(state.LeaseId, now, code, message, state.ExpiresAt));
            _scheduler.Schedule(new ScheduledJob(now + _options.RetryDelay, kind, state, Volatile.Read(ref state.Generation)));
            return;
        }
        Drop(state);
        _ = records.TryDeleteAsync(state.LeaseId, state.Mount);
        session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Expired, now, state.ExpiresAt));
        LogExpired(state.Mount);
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

    private static AuditEntry Entry(string action, LeaseState state) => new(action, state.Path, state.Mount) { LeaseId = state.LeaseId };

    /// <summary>Whom background lease work acts for: the lease's subject, as the keeper.</summary>
    internal static AccessContext BackgroundAccess(string subject) => AccessContext.ForCaller(new CallerIdentity(subject, "lease-keeper", NoAttributes));

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated a lease on mount {Mount}")]
    private partial void LogRotated(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Revoked a lease on mount {Mount} (rotation)")]
    private partial void LogRevokedReplaced(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A lease on mount {Mount} expired before it could be renewed or rotated")]
    private partial void LogExpired(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewal of a lease on mount {Mount} was refused ({Status}); rotating")]
    private partial void LogRenewalRefused(string mount, string status);

    [LoggerMessage(Level = LogLevel.Error, Message = "Scheduled lease work {Kind} failed unexpectedly ({ErrorType})")]
    private partial void LogJobFailed(string kind, string errorType);
}
