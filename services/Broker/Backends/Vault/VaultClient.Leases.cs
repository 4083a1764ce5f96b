using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>Dynamic credentials and their leases.</summary>
public sealed partial class VaultClient
{
    /// <summary>
    /// Issues credentials from <paramref name="path"/> (for example database/creds/ROLE, aws/creds/ROLE
    /// or aws/sts/ROLE). STS paths are written (POST) with an optional TTL; the others are read.
    /// Every call that reaches Vault mints a new database user or AWS key, so the request is retried only
    /// when it cannot have reached Vault (see VaultConnections.ShouldRetry), and it is not abandoned when
    /// the caller gives up: the broker waits for Vault's answer and revokes what the caller will not receive.
    /// </summary>
    public async Task<VaultLease> IssueCredentialsAsync(string path, TimeSpan? stsTtl, bool post, string mount, CancellationToken cancellationToken)
    {
        Func<HttpContent>? content = post
            ? () => JsonContent.Create(new StsRequest { Ttl = stsTtl is { } ttl ? $"{(long)ttl.TotalSeconds}s" : null }, VaultJsonContext.Default.StsRequest)
            : null;
        var (status, body) = await SendAuthenticatedAsync(post ? HttpMethod.Post : HttpMethod.Get, EscapePath(path), content, mount, "issue-credentials",
            mintsCredentials: true, cancellationToken).ConfigureAwait(false);
        var envelope = Read(status, body, VaultJsonContext.Default.VaultEnvelopeDictionaryStringJsonElement, mount, "issue-credentials");
        if (string.IsNullOrEmpty(envelope.LeaseId) || envelope.Data is null)
        {
            if (!string.IsNullOrEmpty(envelope.LeaseId))
            {
                await RevokeUnclaimedAsync(envelope.LeaseId, mount).ConfigureAwait(false);
            }
            BrokerException.ThrowUnavailable("vault issued credentials without a lease");
        }
        if (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up while Vault was minting: nobody will hold these credentials.
            await RevokeUnclaimedAsync(envelope.LeaseId, mount).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
        return new VaultLease(envelope.LeaseId, TimeSpan.FromSeconds(envelope.LeaseDuration), envelope.Renewable, ToStrings(envelope.Data), envelope.Warnings ?? []);
    }

    /// <summary>Renews a lease; Vault may grant less than <paramref name="increment"/> when the lease nears its max TTL.</summary>
    public async Task<VaultLease> RenewLeaseAsync(string leaseId, TimeSpan? increment, string mount, CancellationToken cancellationToken)
    {
        var request = new LeaseRequest { LeaseId = leaseId, Increment = increment is { } i ? (long)i.TotalSeconds : null };
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Put, "sys/leases/renew",
            () => JsonContent.Create(request, VaultJsonContext.Default.LeaseRequest), mount, "lease-renew", cancellationToken).ConfigureAwait(false);
        var envelope = Read(status, body, VaultJsonContext.Default.VaultEnvelopeEmptyData, mount, "lease-renew");
        return new VaultLease(envelope.LeaseId ?? leaseId, TimeSpan.FromSeconds(envelope.LeaseDuration), envelope.Renewable,
            new Dictionary<string, string>(), envelope.Warnings ?? []);
    }

    public async Task RevokeLeaseAsync(string leaseId, string mount, CancellationToken cancellationToken)
    {
        var request = new LeaseRequest { LeaseId = leaseId };
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Put, "sys/leases/revoke",
            () => JsonContent.Create(request, VaultJsonContext.Default.LeaseRequest), mount, "lease-revoke", cancellationToken).ConfigureAwait(false);
        if (status != HttpStatusCode.NoContent)
        {
            Read(status, body, VaultJsonContext.Default.VaultEnvelopeEmptyData, mount, "lease-revoke");
        }
    }

    private async Task RevokeUnclaimedAsync(string leaseId, string mount)
    {
        try
        {
            await RevokeLeaseAsync(leaseId, mount, CancellationToken.None).ConfigureAwait(false);
            LogRevokedUnclaimed(ConnectionName, mount);
        }
        catch (BrokerException ex)
        {
            // Vault revokes it at its TTL at the latest.
            LogRevokeUnclaimedFailed(ConnectionName, mount, ex.Kind.ToString());
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Vault connection {Connection}, mount {Mount}: revoked credentials the caller did not receive")]
    private partial void LogRevokedUnclaimed(string connection, string mount);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Vault connection {Connection}, mount {Mount}: could not revoke credentials the caller did not receive ({Status}); they expire at their TTL")]
    private partial void LogRevokeUnclaimedFailed(string connection, string mount, string status);
}
