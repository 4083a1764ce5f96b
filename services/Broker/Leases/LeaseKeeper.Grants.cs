using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Leases;

// Lease work is authorized for the stream's caller at every step, not only at attach: policies reload at run time.
public sealed partial class LeaseKeeper
{
    /// <summary>
    /// Checks the stream's caller against the current policy before the keeper acts for it: <c>renew</c> on the lease's
    /// path for a renewal, and also <c>issue</c> for a rotation (it issues fresh credentials). Without the grant the lease
    /// gets an ERROR (PERMISSION_DENIED, audited as a refused renew or rotate), leaves the stream, is neither renewed nor
    /// rotated any more, and waits the grace period like the leases of an ended stream: revoked then, unless attached again
    /// by a caller who holds the grant by then.
    /// </summary>
    private async Task<bool> StillGrantedAsync(LeaseState state, bool rotate)
    {
        var session = state.Session!;
        var missing = !guard.IsAllowed(session.Caller, Capability.Renew, state.Path) ? "renew"
            : rotate && !guard.IsAllowed(session.Caller, Capability.Issue, state.Path) ? "issue"
            : null;
        if (missing is null)
        {
            return true;
        }
        var now = time.GetUtcNow();
        var message = $"the caller no longer holds '{missing}' on this lease's path (the policy changed): the lease is no longer "
            + (rotate ? "rotated or renewed" : "renewed or rotated") + $" and is revoked after the grace period ({_options.GracePeriod.TotalSeconds:0.###} s)";
        var error = new BrokerException(BrokerErrorKind.PermissionDenied, message);
        Drop(state);
        await guard.RefusedAsync(session.Access, Entry(rotate ? Audit.AuditActions.Rotate : Audit.AuditActions.Renew, state), error, CancellationToken.None)
            .ConfigureAwait(false);
        await records.TryReleaseAsync(state.LeaseId, ReplicaId, session.Id, now + _options.GracePeriod, state.Mount).ConfigureAwait(false);
        session.Send(LeaseNotice.Failed(state.LeaseId, now, BrokerErrorKind.PermissionDenied, message, state.ExpiresAt));
        LogGrantRemoved(state.Mount);
        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A lease on mount {Mount} lost its caller's grant; it is no longer kept alive")]
    private partial void LogGrantRemoved(string mount);
}
