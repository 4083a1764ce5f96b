using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// Issues credentials and keeps attached leases alive: renews each at about 2/3 of its TTL (with
/// jitter), rotates it (fresh credentials first, the old lease revoked after the overlap) when its max
/// TTL is near or renewal is refused, and revokes the leases of a stream that ended and was not
/// attached again within the grace period. All timing goes through one <see cref="LeaseScheduler"/>
/// and the <see cref="TimeProvider"/>. Logs carry mounts and error types, never lease ids, paths or values.
/// </summary>
public sealed partial class LeaseManager(
    MountTable mounts,
    PolicyEvaluator policy,
    AccessAuditor auditor,
    ILeaseRegistry registry,
    IOptions<LeaseOptions> options,
    TimeProvider time,
    IMeterFactory meterFactory,
    ILogger<LeaseManager> logger) : BackgroundService
{
    private static readonly IReadOnlyDictionary<string, string> NoAttributes = new Dictionary<string, string>();

    private readonly LeaseOptions _options = options.Value;
    private readonly LeaseScheduler _scheduler = new(time);
    private readonly ConcurrentDictionary<string, LeaseState> _local = new(StringComparer.Ordinal);
    private readonly Meter _meter = meterFactory.Create("SecretsBroker.Leases");
    private Histogram<double>? _lateness;
    private Counter<long>? _renewals;

    private Histogram<double> Lateness => _lateness ??= _meter.CreateHistogram<double>("secretsbroker.lease.renewal.lateness", "ms",
        "How late renewals started after their due time");

    private Counter<long> Renewals => _renewals ??= CreateInstruments();

    private Counter<long> CreateInstruments()
    {
        _meter.CreateObservableUpDownCounter("secretsbroker.lease.active",
            () => _local.Values.GroupBy(s => s.Mount).Select(g => new Measurement<long>(g.Count(), new KeyValuePair<string, object?>("mount", g.Key))),
            description: "Leases this replica keeps alive, by mount");
        return _meter.CreateCounter<long>("secretsbroker.lease.renewals", description: "Lease renewals by mount and outcome (renewed, failed)");
    }

    private void CountRenewal(string mount, string outcome) =>
        Renewals.Add(1, new KeyValuePair<string, object?>("mount", mount), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>This process's identity as a lease owner in the registry.</summary>
    public string ReplicaId { get; } = Guid.NewGuid().ToString("n");

    /// <summary>Leases this replica keeps alive right now.</summary>
    public int AttachedCount => _local.Count;

    /// <summary>Observes how late each renewal started (benchmarks); the same values go to the lateness histogram.</summary>
    public Action<TimeSpan>? RenewalLatenessObserver { get; set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Renewals;
        _ = Lateness;
        _scheduler.Schedule(new ScheduledJob(time.GetUtcNow() + _options.SweepInterval, JobKind.Sweep, null, 0));
        await _scheduler.RunAsync(RunJobAsync, _options.MaxConcurrentOperations, stoppingToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _scheduler.Dispose();
        base.Dispose();
    }

    // ---- API operations ---------------------------------------------------------------------

    /// <summary>Issues credentials for a role path; audited, and in strict audit mode returned only once the event is durable.</summary>
    public async Task<IssuedLease> IssueAsync(AccessContext access, string path, CancellationToken cancellationToken)
    {
        string? mount = null;
        IssuedLease issued;
        try
        {
            var (backend, mounted, role) = ResolveRole(access.Caller!, Capability.Issue, path);
            mount = mounted;
            var lease = await backend.IssueCredentialsAsync(role, null, cancellationToken).ConfigureAwait(false);
            var now = time.GetUtcNow();
            issued = new IssuedLease(lease.LeaseId, path, lease.Data, lease.Duration, lease.Renewable, now + lease.Duration);
            try
            {
                await registry.SaveAsync(new LeaseRecord(lease.LeaseId, path, access.Caller!.Subject, lease.Duration, lease.Renewable, issued.ExpiresAt))
                    .ConfigureAwait(false);
                await auditor.LeaseAllowedAsync(access, AuditActions.Issue, path, mounted, lease.LeaseId, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Credentials nobody will get (unrecorded, or unaudited in strict mode) must not stay valid.
                await TryRevokeAsync(backend, lease.LeaseId, mounted).ConfigureAwait(false);
                await TryDeleteAsync(lease.LeaseId).ConfigureAwait(false);
                if (ex is BrokerException)
                {
                    throw;
                }
                LogRegistryFailed(mounted, ex.GetType().Name);
                throw new BrokerException(StatusCode.Unavailable, "the lease registry is unavailable; the credentials were revoked, retry later");
            }
        }
        catch (BrokerException ex)
        {
            await auditor.LeaseRefusedAsync(access, AuditActions.Issue, Auditable(path), mount, null, ex.StatusCode, ex.Message, cancellationToken)
                .ConfigureAwait(false);
            throw;
        }
        LogIssued(mount!);
        return issued;
    }

    /// <summary>Revokes a lease of the caller now; NOT_FOUND for unknown leases and leases of other callers alike.</summary>
    public async Task RevokeAsync(AccessContext access, string leaseId, CancellationToken cancellationToken)
    {
        string path = "";
        string? mount = null;
        try
        {
            if (string.IsNullOrEmpty(leaseId) || leaseId.Length > 1024)
            {
                BrokerException.ThrowInvalidArgument("lease_id is required and at most 1024 characters");
            }
            var record = await GetRecordAsync(leaseId).ConfigureAwait(false);
            if (record is null || record.Subject != access.Caller!.Subject)
            {
                BrokerException.ThrowNotFound("no such lease (or it has expired)");
                return;
            }
            path = record.Path;
            var (backend, mounted, _) = ResolveRole(access.Caller!, Capability.Revoke, record.Path);
            mount = mounted;
            await backend.RevokeLeaseAsync(leaseId, cancellationToken).ConfigureAwait(false);
            await TryDeleteAsync(leaseId).ConfigureAwait(false);
            if (_local.TryRemove(leaseId, out var state))
            {
                Interlocked.Increment(ref state.Generation);
                state.Session?.Leases.TryRemove(leaseId, out _);
                state.Session?.Send(new LeaseNotice(leaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
            }
        }
        catch (BrokerException ex)
        {
            await auditor.LeaseRefusedAsync(access, AuditActions.Revoke, path, mount, leaseId.Length is > 0 and <= 1024 ? leaseId : null, ex.StatusCode,
                ex.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
        await auditor.LeaseAllowedAsync(access, AuditActions.Revoke, path, mount!, leaseId, cancellationToken).ConfigureAwait(false);
        LogRevoked(mount!, "request");
    }

    /// <summary>Attaches a lease to a stream (taking it over from any other stream or replica); the outcome arrives as an event.</summary>
    public async Task AttachAsync(KeepAliveSession session, string leaseId)
    {
        var now = time.GetUtcNow();
        if (string.IsNullOrEmpty(leaseId) || leaseId.Length > 1024)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: StatusCode.InvalidArgument,
                ErrorMessage: "lease ids are 1 to 1024 characters"));
            return;
        }
        if (session.Leases.TryGetValue(leaseId, out var held))
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Attached, now, held.ExpiresAt));
            return;
        }
        if (session.Leases.Count >= _options.MaxLeasesPerStream)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: StatusCode.ResourceExhausted,
                ErrorMessage: $"a stream holds at most {_options.MaxLeasesPerStream} leases"));
            return;
        }
        LeaseRecord? record;
        try
        {
            record = await GetRecordAsync(leaseId).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: ex.StatusCode, ErrorMessage: ex.Message));
            return;
        }
        if (record is null || record.Subject != session.Caller.Subject)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: StatusCode.NotFound, ErrorMessage: "no such lease (or it has expired)"));
            return;
        }
        if (record.ExpiresAt <= now)
        {
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Expired, now, record.ExpiresAt));
            return;
        }
        VaultDynamicBackend backend;
        string mount;
        string role;
        try
        {
            (backend, mount, role) = ResolveRole(session.Caller, Capability.Renew, record.Path);
        }
        catch (BrokerException ex)
        {
            await auditor.LeaseRefusedAsync(session.Access, AuditActions.Renew, record.Path, null, leaseId, ex.StatusCode, ex.Message, CancellationToken.None)
                .ConfigureAwait(false);
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: ex.StatusCode, ErrorMessage: ex.Message));
            return;
        }
        var state = new LeaseState(leaseId, record.Path, record.Subject, backend, mount, role, session)
        {
            Ttl = record.Ttl,
            Renewable = record.Renewable,
            ExpiresAt = record.ExpiresAt,
        };
        try
        {
            await registry.TakeOverAsync(leaseId, ReplicaId, session.Id, record.ExpiresAt).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(mount, ex.GetType().Name);
            session.Send(new LeaseNotice(leaseId, LeaseNoticeType.Error, now, ErrorCode: StatusCode.Unavailable,
                ErrorMessage: "the lease registry is unavailable; attach again later"));
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
        try
        {
            await registry.ReleaseAsync(leaseId, ReplicaId, session.Id, revokeAt: null).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(state.Mount, ex.GetType().Name);
        }
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

    private async Task OrphanAsync(KeepAliveSession session, LeaseState state)
    {
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
        try
        {
            // Atomic: if another replica or stream took the lease over meanwhile, this changes nothing.
            await registry.ReleaseAsync(state.LeaseId, ReplicaId, session.Id, time.GetUtcNow() + _options.GracePeriod).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(state.Mount, ex.GetType().Name);
        }
    }

    // ---- scheduled work ---------------------------------------------------------------------

    private void ScheduleRenewal(LeaseState state)
    {
        var ttl = state.Ttl > TimeSpan.Zero ? state.Ttl : state.ExpiresAt - time.GetUtcNow();
        var jitter = ttl * (_options.RenewJitter * Random.Shared.NextDouble());
        var due = state.ExpiresAt - ttl * (1 - _options.RenewAtFraction) - jitter;
        _scheduler.Schedule(new ScheduledJob(due, state.Renewable ? JobKind.Renew : JobKind.Rotate, state, Volatile.Read(ref state.Generation)));
    }

    private async Task RunJobAsync(ScheduledJob job, TimeSpan lateness)
    {
        try
        {
            switch (job.Kind)
            {
                case JobKind.Sweep:
                    await SweepAsync().ConfigureAwait(false);
                    break;
                case JobKind.RevokeRotated:
                    await RevokeRotatedAsync(job.Lease!).ConfigureAwait(false);
                    break;
                case JobKind.Renew or JobKind.Rotate when IsCurrent(job):
                    if (job.Kind == JobKind.Renew)
                    {
                        Lateness.Record(lateness.TotalMilliseconds);
                        RenewalLatenessObserver?.Invoke(lateness);
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
            record = await registry.GetAsync(state.LeaseId).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(state.Mount, ex.GetType().Name);
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
                var renewed = await state.Backend.RenewLeaseAsync(state.LeaseId, state.Ttl, CancellationToken.None).ConfigureAwait(false);
                var now = time.GetUtcNow();
                CountRenewal(state.Mount, "renewed");
                state.ExpiresAt = now + renewed.Duration;
                await TrySaveAsync(record with { ExpiresAt = state.ExpiresAt }, state.Mount).ConfigureAwait(false);
                await TryAuditAsync(background, AuditActions.Renew, state).ConfigureAwait(false);
                session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Renewed, now, state.ExpiresAt));
                if (renewed.Duration >= state.Ttl && renewed.Renewable)
                {
                    ScheduleRenewal(state);
                    return;
                }
                // Capped by the max TTL (or no longer renewable): the next renewal could not extend it; rotate now.
            }
            catch (BrokerException ex) when (ex.StatusCode is StatusCode.FailedPrecondition or StatusCode.NotFound or StatusCode.InvalidArgument
                or StatusCode.PermissionDenied)
            {
                // Renewal refused: fresh credentials are the only way forward.
                CountRenewal(state.Mount, "failed");
                LogRenewalRefused(state.Mount, ex.StatusCode.ToString());
            }
            catch (BrokerException ex)
            {
                CountRenewal(state.Mount, "failed");
                await auditor.LeaseRefusedAsync(background, AuditActions.Renew, state.Path, state.Mount, state.LeaseId, ex.StatusCode, ex.Message,
                    CancellationToken.None).ConfigureAwait(false);
                RetryOrExpire(state, JobKind.Renew, ex.StatusCode, "renewal failed: " + ex.Message);
                return;
            }
        }
        await RotateAsync(state, background).ConfigureAwait(false);
    }

    private async Task RotateAsync(LeaseState state, AccessContext background)
    {
        var session = state.Session!;
        VaultLease fresh;
        try
        {
            fresh = await state.Backend.IssueCredentialsAsync(state.Role, null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await auditor.LeaseRefusedAsync(background, AuditActions.Rotate, state.Path, state.Mount, state.LeaseId, ex.StatusCode, ex.Message,
                CancellationToken.None).ConfigureAwait(false);
            RetryOrExpire(state, JobKind.Rotate, ex.StatusCode, "rotation failed: " + ex.Message);
            return;
        }
        var now = time.GetUtcNow();
        var next = new LeaseState(fresh.LeaseId, state.Path, state.Subject, state.Backend, state.Mount, state.Role, session)
        {
            Ttl = fresh.Duration,
            Renewable = fresh.Renewable,
            ExpiresAt = now + fresh.Duration,
        };
        await TrySaveAsync(new LeaseRecord(next.LeaseId, next.Path, next.Subject, next.Ttl, next.Renewable, next.ExpiresAt), state.Mount).ConfigureAwait(false);
        try
        {
            await registry.TakeOverAsync(next.LeaseId, ReplicaId, session.Id, next.ExpiresAt).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(state.Mount, ex.GetType().Name);
        }
        Drop(state);
        _local[next.LeaseId] = next;
        session.Leases[next.LeaseId] = next;
        await TryAuditAsync(background, AuditActions.Rotate, next).ConfigureAwait(false);
        session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Rotated, now, next.ExpiresAt,
            new IssuedLease(next.LeaseId, next.Path, fresh.Data, next.Ttl, next.Renewable, next.ExpiresAt)));
        LogRotated(state.Mount);
        ScheduleRenewal(next);
        var overlapEnd = now + _options.RotationOverlap;
        _scheduler.Schedule(new ScheduledJob(overlapEnd < state.ExpiresAt ? overlapEnd : state.ExpiresAt, JobKind.RevokeRotated, state, 0));
    }

    private async Task RevokeRotatedAsync(LeaseState old)
    {
        try
        {
            await old.Backend.RevokeLeaseAsync(old.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.StatusCode != StatusCode.NotFound)
        {
            await auditor.LeaseRefusedAsync(BackgroundAccess(old.Subject), AuditActions.Revoke, old.Path, old.Mount, old.LeaseId, ex.StatusCode, ex.Message,
                CancellationToken.None).ConfigureAwait(false);
            if (time.GetUtcNow() + _options.RetryDelay < old.ExpiresAt)
            {
                _scheduler.Schedule(new ScheduledJob(time.GetUtcNow() + _options.RetryDelay, JobKind.RevokeRotated, old, 0));
            }
            return;
        }
        await TryDeleteAsync(old.LeaseId).ConfigureAwait(false);
        await TryAuditAsync(BackgroundAccess(old.Subject), AuditActions.Revoke, old).ConfigureAwait(false);
        old.Session?.Send(new LeaseNotice(old.LeaseId, LeaseNoticeType.Revoked, time.GetUtcNow()));
        LogRevoked(old.Mount, "rotation");
    }

    private void RetryOrExpire(LeaseState state, JobKind kind, StatusCode code, string message)
    {
        var now = time.GetUtcNow();
        var session = state.Session!;
        if (now + _options.RetryDelay < state.ExpiresAt)
        {
            session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Error, now, state.ExpiresAt, ErrorCode: code, ErrorMessage: message));
            _scheduler.Schedule(new ScheduledJob(now + _options.RetryDelay, kind, state, Volatile.Read(ref state.Generation)));
            return;
        }
        Drop(state);
        _ = TryDeleteAsync(state.LeaseId);
        session.Send(new LeaseNotice(state.LeaseId, LeaseNoticeType.Expired, now, state.ExpiresAt));
        LogExpired(state.Mount);
    }

    private async Task SweepAsync()
    {
        try
        {
            var keys = await registry.DueOrphanKeysAsync(time.GetUtcNow(), 256).ConfigureAwait(false);
            foreach (var key in keys)
            {
                if (!await registry.ClaimOrphanKeyAsync(key).ConfigureAwait(false)
                    || await registry.GetByKeyAsync(key).ConfigureAwait(false) is not { Owner: "" } record)
                {
                    continue;
                }
                await RevokeOrphanAsync(record).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogSweepFailed(ex.GetType().Name);
        }
        finally
        {
            _scheduler.Schedule(new ScheduledJob(time.GetUtcNow() + _options.SweepInterval, JobKind.Sweep, null, 0));
        }
    }

    private async Task RevokeOrphanAsync(LeaseRecord record)
    {
        var background = BackgroundAccess(record.Subject);
        string? mount = null;
        try
        {
            var (mounted, role) = mounts.Resolve(record.Path);
            mount = mounted.Mount.Prefix;
            if (mounted.Backend is not VaultDynamicBackend backend || role.Length == 0)
            {
                return;
            }
            await backend.RevokeLeaseAsync(record.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.StatusCode != StatusCode.NotFound)
        {
            await auditor.LeaseRefusedAsync(background, AuditActions.Revoke, record.Path, mount, record.LeaseId, ex.StatusCode, ex.Message, CancellationToken.None)
                .ConfigureAwait(false);
            // Try again at the next sweep.
            await registry.AddOrphanAsync(record.LeaseId, time.GetUtcNow() + _options.RetryDelay).ConfigureAwait(false);
            return;
        }
        await TryDeleteAsync(record.LeaseId).ConfigureAwait(false);
        try
        {
            await auditor.LeaseAllowedAsync(background, AuditActions.Revoke, record.Path, mount ?? "", record.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            // Counted by the recorder; the revocation happened either way.
        }
        LogRevoked(mount ?? "", "grace period over");
    }

    // ---- helpers ----------------------------------------------------------------------------

    private void Drop(LeaseState state)
    {
        Interlocked.Increment(ref state.Generation);
        _local.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
        state.Session?.Leases.TryRemove(new KeyValuePair<string, LeaseState>(state.LeaseId, state));
    }

    private (VaultDynamicBackend Backend, string Mount, string Role) ResolveRole(CallerIdentity caller, Capability capability, string path)
    {
        LogicalPath.EnsureValid(path);
        policy.EnsureAllowed(caller, capability, path);
        var (mounted, role) = mounts.Resolve(path);
        if (mounted.Backend is not VaultDynamicBackend backend)
        {
            BrokerException.ThrowFailedPrecondition("leases come from vault-dynamic mounts; this path's mount has static secrets (use GetSecret)");
            return default;
        }
        if (role.Length == 0)
        {
            BrokerException.ThrowInvalidArgument("path names a mount, not a role; add the role's name after the mount prefix");
        }
        return (backend, mounted.Mount.Prefix, role);
    }

    private async Task<LeaseRecord?> GetRecordAsync(string leaseId)
    {
        try
        {
            return await registry.GetAsync(leaseId).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not BrokerException)
        {
            LogRegistryFailed("", ex.GetType().Name);
            throw new BrokerException(StatusCode.Unavailable, "the lease registry is unavailable; retry later");
        }
    }

    private async Task TrySaveAsync(LeaseRecord record, string mount)
    {
        try
        {
            await registry.SaveAsync(record).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed(mount, ex.GetType().Name);
        }
    }

    private async Task TryDeleteAsync(string leaseId)
    {
        try
        {
            await registry.DeleteAsync(leaseId).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRegistryFailed("", ex.GetType().Name);
        }
    }

    private async Task TryRevokeAsync(VaultDynamicBackend backend, string leaseId, string mount)
    {
        try
        {
            await backend.RevokeLeaseAsync(leaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            LogRevokeFailed(mount, ex.StatusCode.ToString());
        }
    }

    private async Task TryAuditAsync(AccessContext access, string action, LeaseState state)
    {
        try
        {
            await auditor.LeaseAllowedAsync(access, action, state.Path, state.Mount, state.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            // Counted by the recorder; background lease work goes on (there is no caller to refuse).
        }
    }

    private static AccessContext BackgroundAccess(string subject) => AccessContext.ForCaller(new CallerIdentity(subject, "lease-keeper", NoAttributes));

    private static string Auditable(string path) => LogicalPath.Validate(path) is null ? path : "";

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued credentials on mount {Mount}")]
    private partial void LogIssued(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated a lease on mount {Mount}")]
    private partial void LogRotated(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Revoked a lease on mount {Mount} ({Reason})")]
    private partial void LogRevoked(string mount, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A lease on mount {Mount} expired before it could be renewed or rotated")]
    private partial void LogExpired(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewal of a lease on mount {Mount} was refused ({Status}); rotating")]
    private partial void LogRenewalRefused(string mount, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Revoking a lease on mount {Mount} failed ({Status})")]
    private partial void LogRevokeFailed(string mount, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lease registry operation failed for mount {Mount} ({ErrorType})")]
    private partial void LogRegistryFailed(string mount, string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Grace-period sweep failed ({ErrorType}); it runs again at the next interval")]
    private partial void LogSweepFailed(string errorType);

    [LoggerMessage(Level = LogLevel.Error, Message = "Scheduled lease work {Kind} failed unexpectedly ({ErrorType})")]
    private partial void LogJobFailed(string kind, string errorType);
}
