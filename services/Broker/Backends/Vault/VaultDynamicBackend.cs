using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Mount type <c>vault-dynamic</c>: a database or AWS secrets engine. The name inside the mount is the
/// engine's role; credentials come with a lease that this backend renews and revokes. It has no static
/// secrets, so it declares no read or list capability.
/// </summary>
public sealed class VaultDynamicBackend(VaultClient client, VaultDynamicMountOptions options, string mount) : ICredentialIssuing, IBackendHealthProbe
{
    /// <summary>AWS STS's DurationSeconds range (AssumeRole and GetFederationToken take at least 900 s; federation tokens at most 129,600 s).</summary>
    public static readonly TimeSpan MinimumStsTtl = TimeSpan.FromMinutes(15);

    public static readonly TimeSpan MaximumStsTtl = TimeSpan.FromHours(36);

    public VaultDynamicMountOptions Options { get; } = options;

    public async Task<IssuedCredentials> IssueAsync(string role, CancellationToken cancellationToken)
    {
        if (role.Length == 0 || role.Contains('/', StringComparison.Ordinal))
        {
            BrokerException.ThrowInvalidArgument("a vault-dynamic path names one role directly beneath the mount");
        }
        var sts = Options.CredentialEndpoint == "sts";
        var lease = await client.IssueCredentialsAsync($"{Options.EnginePath}/{Options.CredentialEndpoint}/{role}", Options.StsTtl, post: sts, mount,
            cancellationToken).ConfigureAwait(false);
        return new IssuedCredentials(lease.LeaseId, lease.Data, lease.Duration, lease.Renewable);
    }

    public async Task<LeaseRenewal> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken)
    {
        EnsureOwnLease(leaseId);
        var renewed = await client.RenewLeaseAsync(leaseId, increment, mount, cancellationToken).ConfigureAwait(false);
        return new LeaseRenewal(renewed.Duration, renewed.Renewable);
    }

    public Task RevokeAsync(string leaseId, CancellationToken cancellationToken)
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
