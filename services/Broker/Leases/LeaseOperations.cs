using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// The unary lease API: issue credentials and revoke a lease, each through the access guard (validated, authorized,
/// audited). Keeping leases alive over a stream is <see cref="LeaseKeeper"/>'s. Logs carry mounts, never lease ids,
/// paths or values.
/// </summary>
public sealed partial class LeaseOperations(AccessGuard guard, LeaseRecords records, LeaseKeeper keeper, TimeProvider time, ILogger<LeaseOperations> logger)
{
    internal const string NotDynamic = "leases come from vault-dynamic mounts; this path's mount has static secrets (use GetSecret)";

    /// <summary>Issues credentials for a role path; audited, and in strict audit mode returned only once the event is durable.</summary>
    public Task<IssuedLease> IssueAsync(AccessContext access, string path, CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.Issue, path, this, static (attempt, self, ct) => self.IssueAuthorizedAsync(attempt, ct), cancellationToken);

    private async Task<IssuedLease> IssueAuthorizedAsync(AccessAttempt attempt, CancellationToken cancellationToken)
    {
        var target = guard.Authorize<ICredentialIssuing>(attempt, Capability.Issue, NotDynamic);
        var credentials = await target.Capability.IssueAsync(target.Name, cancellationToken).ConfigureAwait(false);
        attempt.LeaseId = credentials.LeaseId;
        var issued = new IssuedLease(credentials.LeaseId, attempt.Path, credentials.Data, credentials.Duration, credentials.Renewable,
            time.GetUtcNow() + credentials.Duration);
        try
        {
            await records.Registry.SaveAsync(new LeaseRecord(issued.LeaseId, attempt.Path, attempt.Caller.Subject, issued.Ttl, issued.Renewable, issued.ExpiresAt)
            {
                Identity = guard.OwnerKey(attempt.Caller),
            }).ConfigureAwait(false);
            // The allowed event is recorded here rather than after the guard's run: credentials nobody will get
            // (unrecorded, or unaudited in strict mode) must be revoked, not left valid.
            await guard.AllowedAsync(attempt.Access, attempt.ToEntry(), cancellationToken).ConfigureAwait(false);
            attempt.AllowedRecorded = true;
        }
        catch (Exception ex)
        {
            // Cancellation included: the caller will not receive these credentials either.
            await TryRevokeAsync(target.Capability, issued.LeaseId, target.Mount.Prefix).ConfigureAwait(false);
            await records.TryDeleteAsync(issued.LeaseId, target.Mount.Prefix).ConfigureAwait(false);
            attempt.LeaseId = null;
            if (ex is BrokerException or OperationCanceledException)
            {
                throw;
            }
            records.ReportFailure(target.Mount.Prefix, ex);
            throw new BrokerException(BrokerErrorKind.Unavailable, "the lease registry is unavailable; the credentials were revoked, retry later");
        }
        LogIssued(target.Mount.Prefix);
        return issued;
    }

    /// <summary>Revokes a lease of the caller (its whole identity) now; NOT_FOUND for unknown leases and leases of other callers alike.</summary>
    public Task RevokeAsync(AccessContext access, string leaseId, CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.Revoke, "", (this, leaseId), static (attempt, state, ct) => state.Item1.RevokeAuthorizedAsync(attempt, state.leaseId, ct),
            cancellationToken);

    private async Task<bool> RevokeAuthorizedAsync(AccessAttempt attempt, string leaseId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(leaseId) || leaseId.Length > 1024)
        {
            BrokerException.ThrowInvalidArgument("lease_id is required and at most 1024 characters");
        }
        attempt.LeaseId = leaseId;
        var record = await records.GetAsync(leaseId).ConfigureAwait(false);
        if (record is null || !LeaseKeeper.IsOwner(record, guard.OwnerKey(attempt.Caller)))
        {
            BrokerException.ThrowNotFound("no such lease (or it has expired)");
        }
        attempt.Path = record.Path;
        var target = guard.Authorize<ICredentialIssuing>(attempt, Capability.Revoke, NotDynamic);
        await target.Capability.RevokeAsync(leaseId, cancellationToken).ConfigureAwait(false);
        await records.TryDeleteAsync(leaseId, target.Mount.Prefix).ConfigureAwait(false);
        keeper.Revoked(leaseId);
        LogRevoked(target.Mount.Prefix);
        return true;
    }

    private async Task TryRevokeAsync(ICredentialIssuing issuer, string leaseId, string mount)
    {
        try
        {
            await issuer.RevokeAsync(leaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            LogRevokeFailed(mount, ex.Kind.Name());
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued credentials on mount {Mount}")]
    private partial void LogIssued(string mount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Revoked a lease on mount {Mount} (request)")]
    private partial void LogRevoked(string mount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Revoking unreturned credentials on mount {Mount} failed ({Status})")]
    private partial void LogRevokeFailed(string mount, string status);
}
