using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Access;

/// <summary>
/// The one access guard every feature (reading, listing, leases, watching) goes through: validate the path,
/// authorize it against the current policy (deny by default, before anything is looked up, so a denial reveals
/// nothing), resolve it to the mount's capability, and audit the outcome, refusals included.
/// </summary>
public sealed class AccessGuard(MountTable mounts, PolicyEvaluator policy, AccessAuditor auditor)
{
    /// <summary>
    /// Validates and authorizes <paramref name="path"/> for <paramref name="caller"/>, then resolves it to capability
    /// <typeparamref name="T"/> of its mount; FAILED_PRECONDITION with <paramref name="unsupported"/> when the mount lacks it.
    /// </summary>
    public Authorized<T> Authorize<T>(CallerIdentity caller, Capability capability, string path, string unsupported, bool allowMountRoot = false)
        where T : class, ISecretBackend
    {
        LogicalPath.EnsureValid(path);
        policy.EnsureAllowed(caller, capability, path);
        var (resolved, mounted, name) = mounts.Resolve<T>(path, unsupported, allowMountRoot);
        return new Authorized<T>(resolved, mounted, name);
    }

    /// <summary>Like <see cref="Authorize{T}(CallerIdentity, Capability, string, string, bool)"/> for the attempt's path; the attempt learns the mount.</summary>
    public Authorized<T> Authorize<T>(AccessAttempt attempt, Capability capability, string unsupported, bool allowMountRoot = false)
        where T : class, ISecretBackend
    {
        var authorized = Authorize<T>(attempt.Caller, capability, attempt.Path, unsupported, allowMountRoot);
        attempt.Mount = authorized.Mount.Prefix;
        return authorized;
    }

    /// <summary>
    /// The owner key of a caller's leases: an HMAC (audit key) of its whole identity (<see cref="CallerIdentity.IdentityKey"/>),
    /// so the registry holds nothing readable and a caller with the same subject but another method, issuer or namespace owns nothing of it.
    /// </summary>
    public string OwnerKey(CallerIdentity caller) => auditor.Hmac("lease-owner\0" + caller.IdentityKey);

    /// <summary>Whether the caller holds <paramref name="capability"/> on a path (for filtering what a caller may see).</summary>
    public bool IsAllowed(CallerIdentity caller, Capability capability, string path) => policy.IsAllowed(caller, capability, path);

    /// <summary>
    /// Runs an operation under audit. A <see cref="BrokerException"/> it throws is recorded as a refusal and rethrown;
    /// success is recorded as allowed, and in strict audit mode the result is returned only once its event is durable.
    /// <paramref name="state"/> lets callers pass a static lambda (no closure per call on the read path).
    /// </summary>
    public async Task<TResult> RunAsync<TState, TResult>(AccessContext access, string action, string path, TState state,
        Func<AccessAttempt, TState, CancellationToken, Task<TResult>> operation, CancellationToken cancellationToken)
    {
        var attempt = new AccessAttempt(access, action, path);
        TResult result;
        try
        {
            result = await operation(attempt, state, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await auditor.RefusedAsync(access, attempt.ToEntry(), ex, cancellationToken).ConfigureAwait(false);
            throw;
        }
        if (!attempt.AllowedRecorded)
        {
            await auditor.AllowedAsync(access, attempt.ToEntry(), cancellationToken).ConfigureAwait(false);
        }
        return result;
    }

    /// <summary>Records a refusal decided outside <see cref="RunAsync"/> (a batch item, a lease event of a stream).</summary>
    public Task RefusedAsync(AccessContext access, AuditEntry entry, BrokerException error, CancellationToken cancellationToken) =>
        auditor.RefusedAsync(access, entry, error, cancellationToken);

    /// <summary>Records an allowed action decided outside <see cref="RunAsync"/>; throws UNAVAILABLE in strict mode when it cannot be recorded.</summary>
    public Task AllowedAsync(AccessContext access, AuditEntry entry, CancellationToken cancellationToken) =>
        auditor.AllowedAsync(access, entry, cancellationToken);

    /// <summary>Records the served items of a batch as one group; throws UNAVAILABLE unless every event is durable.</summary>
    public Task AllowedManyAsync(AccessContext access, string action, IReadOnlyList<ServedSecret> served, CancellationToken cancellationToken) =>
        auditor.AllowedManyAsync(access, action, served, cancellationToken);
}
