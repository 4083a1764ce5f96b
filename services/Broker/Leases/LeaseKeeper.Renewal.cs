using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Leases;

// The keeper's scheduled work: renewals, rotations and revoking what a rotation replaced (decisions in RenewalPolicy).
public sealed partial class LeaseKeeper
{
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
            record = new LeaseRecord(state.LeaseId, state.Path, state.Subject, state.Ttl, state.Renewable, state.ExpiresAt, ReplicaId, session.Id)
            {
                Identity = state.Identity,
            };
        }
        if (record is null)
        {
            Drop(state);
            session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
            return;
        }
        if (record.Owner.Length == 0 && !session.Ended
            && await records.TryReclaimAsync(state.LeaseId, ReplicaId, session.Id, state.ExpiresAt, state.Mount).ConfigureAwait(false))
        {
            // A survivor took this replica for crashed (it was silent) and put the lease in the grace period; its client
            // still holds it here, so it is this stream's again.
        }
        else if (record.Owner != ReplicaId || record.StreamId != session.Id)
        {
            Drop(state);
            return;
        }
        var now = time.GetUtcNow();
        if (session.Caller.CredentialExpired(now))
        {
            // Nothing is renewed or issued on an expired credential: the stream ends UNAUTHENTICATED at this instant
            // (StreamLifetime), and its leases wait the grace period for a re-attach with a fresh one.
            return;
        }
        if (now >= state.ExpiresAt)
        {
            // The work came too late (a stalled replica): an expired lease is reported, never renewed or rotated silently.
            Expire(state);
            return;
        }
        if (!rotate && !await StillGrantedAsync(state, rotate: false).ConfigureAwait(false))
        {
            return;
        }
        var background = BackgroundAccess(state.Subject);
        if (!rotate)
        {
            try
            {
                var renewed = await state.Issuer.RenewAsync(state.LeaseId, state.Ttl, CancellationToken.None).ConfigureAwait(false);
                var renewedAt = time.GetUtcNow();
                metrics.Renewal(state.Mount, "renewed");
                state.ExpiresAt = renewedAt + renewed.Duration;
                await records.TrySaveAsync(record with { ExpiresAt = state.ExpiresAt }, state.Mount).ConfigureAwait(false);
                await TryAuditAsync(background, AuditActions.Renew, state).ConfigureAwait(false);
                session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Renewed, renewedAt, state.ExpiresAt));
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
                    switch (RenewalPolicy.AfterTransientRenewalFailure(time.GetUtcNow(), state.ExpiresAt, state.Ttl, _options))
                    {
                        case RenewalDecision.Expire:
                            Expire(state);
                            return;
                        case RenewalDecision.RetryOrExpire:
                            RetryOrExpire(state, JobKind.Renew, ex.Kind, "renewal failed: " + ex.Message);
                            return;
                    }
                    // Renewals keep failing and the lease nears its end: fresh credentials now, while issuing still works.
                    session.Send(LeaseNotice.Failed(state.LeaseId, time.GetUtcNow(), ex.Kind, "renewal failed: " + ex.Message + "; rotating before expiry",
                        state.ExpiresAt));
                    LogRotatingAfterFailures(state.Mount);
                }
                else
                {
                    LogRenewalRefused(state.Mount, ex.Kind.Name());
                }
            }
        }
        await RotateAsync(state, background).ConfigureAwait(false);
    }

    private async Task RotateAsync(LeaseState state, AccessContext background)
    {
        var session = state.Session!;
        if (!await StillGrantedAsync(state, rotate: true).ConfigureAwait(false))
        {
            return;
        }
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
            Identity = state.Identity,
            Ttl = fresh.Duration,
            Renewable = fresh.Renewable,
            ExpiresAt = now + fresh.Duration,
        };
        await records.TrySaveAsync(new LeaseRecord(next.LeaseId, next.Path, next.Subject, next.Ttl, next.Renewable, next.ExpiresAt) { Identity = next.Identity },
            state.Mount).ConfigureAwait(false);
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
        Expire(state);
    }

    /// <summary>The lease ran out (or will before another attempt could help): EXPIRED, and nothing more is done for it.</summary>
    private void Expire(LeaseState state)
    {
        Drop(state);
        _ = records.TryDeleteAsync(state.LeaseId, state.Mount);
        state.Session?.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Expired, time.GetUtcNow(), state.ExpiresAt));
        LogExpired(state.Mount);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated a lease on mount {Mount}")]
    private partial void LogRotated(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Revoked a lease on mount {Mount} (rotation)")]
    private partial void LogRevokedReplaced(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A lease on mount {Mount} expired before it could be renewed or rotated")]
    private partial void LogExpired(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewals of a lease on mount {Mount} kept failing until near its expiry; rotating")]
    private partial void LogRotatingAfterFailures(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewal of a lease on mount {Mount} was refused ({Status}); rotating")]
    private partial void LogRenewalRefused(string mount, string status);
}
