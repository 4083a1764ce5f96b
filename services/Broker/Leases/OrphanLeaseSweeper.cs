using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// Revokes leases whose stream ended and was not re-attached within the grace period. Every replica sweeps; the
/// registry hands each due lease to exactly one of them (<see cref="ILeaseRegistry.ClaimOrphanKeyAsync"/>).
/// </summary>
public sealed partial class OrphanLeaseSweeper(
    MountTable mounts,
    AccessGuard guard,
    LeaseRecords records,
    IOptions<LeaseOptions> options,
    TimeProvider time,
    ILogger<OrphanLeaseSweeper> logger) : BackgroundService
{
    private readonly LeaseOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await SweepAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>One sweep: revokes up to 256 due leases.</summary>
    public async Task SweepAsync()
    {
        try
        {
            var registry = records.Registry;
            foreach (var key in await registry.DueOrphanKeysAsync(time.GetUtcNow(), 256).ConfigureAwait(false))
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
    }

    private async Task RevokeOrphanAsync(LeaseRecord record)
    {
        var background = LeaseKeeper.BackgroundAccess(record.Subject);
        var entry = new AuditEntry(AuditActions.Revoke, record.Path) { LeaseId = record.LeaseId };
        try
        {
            var (issuer, mounted, role) = mounts.Resolve<ICredentialIssuing>(record.Path, LeaseOperations.NotDynamic);
            entry = entry with { Mount = mounted.Mount.Prefix };
            await issuer.RevokeAsync(record.LeaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind is BrokerErrorKind.FailedPrecondition or BrokerErrorKind.InvalidArgument)
        {
            // The path no longer names a dynamic mount (the configuration changed): nothing here can revoke it, and
            // the backend ends it at its TTL. Recorded, and not retried forever.
            await guard.RefusedAsync(background, entry, ex, CancellationToken.None).ConfigureAwait(false);
            await records.TryDeleteAsync(record.LeaseId).ConfigureAwait(false);
            return;
        }
        catch (BrokerException ex) when (ex.Kind != BrokerErrorKind.NotFound)
        {
            await guard.RefusedAsync(background, entry, ex, CancellationToken.None).ConfigureAwait(false);
            // Try again at the next sweep.
            await records.Registry.AddOrphanAsync(record.LeaseId, time.GetUtcNow() + _options.RetryDelay).ConfigureAwait(false);
            return;
        }
        await records.TryDeleteAsync(record.LeaseId, entry.Mount ?? "").ConfigureAwait(false);
        try
        {
            await guard.AllowedAsync(background, entry, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            // Counted by the recorder; the revocation happened either way.
        }
        LogRevoked(entry.Mount ?? "");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Revoked a lease on mount {Mount} (grace period over)")]
    private partial void LogRevoked(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Grace-period sweep failed ({ErrorType}); it runs again at the next interval")]
    private partial void LogSweepFailed(string errorType);
}
