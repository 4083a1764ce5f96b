using Grpc.Core;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Mount type <c>vault-dynamic</c>: a database or AWS secrets engine. The name inside the mount is the
/// engine's role; credentials come from <see cref="IssueCredentialsAsync"/> with a lease that
/// <see cref="RenewLeaseAsync"/> and <see cref="RevokeLeaseAsync"/> manage. Plain reads are refused.
/// </summary>
public sealed class VaultDynamicBackend(VaultClient client, VaultDynamicMountOptions options, string mount) : ISecretBackend, IBackendHealthProbe
{
    /// <summary>AWS STS's DurationSeconds range (AssumeRole and GetFederationToken take at least 900 s; federation tokens at most 129,600 s).</summary>
    public static readonly TimeSpan MinimumStsTtl = TimeSpan.FromMinutes(15);

    public static readonly TimeSpan MaximumStsTtl = TimeSpan.FromHours(36);

    public VaultDynamicMountOptions Options { get; } = options;

    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken) =>
        Task.FromException<SecretValue>(new BrokerException(StatusCode.FailedPrecondition,
            "this mount issues dynamic credentials; use IssueCredentials instead of GetSecret"));

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
        Task.FromException<SecretListingPage>(new BrokerException(StatusCode.FailedPrecondition,
            "this mount issues dynamic credentials and has no secrets to list"));

    /// <summary>Issues credentials for <paramref name="role"/>; <paramref name="ttl"/> applies to STS credentials only.</summary>
    public Task<VaultLease> IssueCredentialsAsync(string role, TimeSpan? ttl, CancellationToken cancellationToken)
    {
        if (role.Length == 0 || role.Contains('/', StringComparison.Ordinal))
        {
            BrokerException.ThrowInvalidArgument("a vault-dynamic path names one role directly beneath the mount");
        }
        if (ttl is { } requested && (requested < MinimumStsTtl || requested > MaximumStsTtl))
        {
            BrokerException.ThrowInvalidArgument("the credentials' TTL must be between 15 minutes and 36 hours");
        }
        var sts = Options.CredentialEndpoint == "sts";
        return client.IssueCredentialsAsync($"{Options.EnginePath}/{Options.CredentialEndpoint}/{role}", ttl ?? Options.StsTtl, post: sts, mount, cancellationToken);
    }

    public Task<VaultLease> RenewLeaseAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken)
    {
        EnsureOwnLease(leaseId);
        return client.RenewLeaseAsync(leaseId, increment, mount, cancellationToken);
    }

    public Task RevokeLeaseAsync(string leaseId, CancellationToken cancellationToken)
    {
        EnsureOwnLease(leaseId);
        return client.RevokeLeaseAsync(leaseId, mount, cancellationToken);
    }

    private void EnsureOwnLease(string leaseId)
    {
        if (!leaseId.StartsWith(Options.EnginePath + "/", StringComparison.Ordinal))
        {
            BrokerException.ThrowNotFound("the lease was not issued by this mount");
        }
    }

    /// <summary>Readiness: Vault's sys/health on this mount's connection (no secret is read).</summary>
    public Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken) => client.ProbeAsync(cancellationToken);
}
