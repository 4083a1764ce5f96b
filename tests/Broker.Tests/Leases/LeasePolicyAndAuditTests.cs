using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Leases;

[Trait("Category", "Integration")]
public sealed class LeasePolicyAndAuditTests
{
    private const string OtherToken = "FAKE-test-token-beta";

    /// <summary>test-alpha may issue, renew and revoke db/short only; test-beta may issue db/steady but not renew or revoke it.</summary>
    private const string Policy = """
        policies:
          - name: alpha-db
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["db/short", "db/steady"]
                capabilities: [issue, renew, revoke]
          - name: beta-issue-only
            appliesTo: { subjects: [test-beta] }
            rules:
              - paths: ["db/steady"]
                capabilities: [issue]
        """;

    private static async Task<BrokerHost> StartAsync(VaultEmulatorHost vault, RedisServer redis)
    {
        var directory = new TestDirectory();
        directory.WriteFile("lease-policy.yaml", Policy);
        var settings = LeaseTestEnvironment.Broker(vault, redis);
        settings["Broker:Policy:File"] = "lease-policy.yaml";
        settings["Broker:Auth:DevTokens:Tokens:1:Subject"] = "test-beta";
        settings["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(OtherToken);
        return await BrokerHost.StartAsync(settings, directory);
    }

    [Fact]
    public async Task Issue_renew_and_revoke_follow_policy_and_leases_of_other_callers_are_not_found()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await StartAsync(vault, redis);
        var alpha = broker.CreateClient().Raw;
        var beta = broker.CreateClient(OtherToken).Raw;

        var denied = await Assert.ThrowsAsync<RpcException>(() => beta.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/short" }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        // beta may issue but not keep alive or revoke.
        var betaLease = await beta.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using (var stream = await KeepAliveStream.OpenAsync(beta, betaLease.LeaseId))
        {
            await Eventually.WaitUntilAsync(() => !stream.Events.IsEmpty, because: "the attach is answered");
            Assert.Equal((int)StatusCode.PermissionDenied, Assert.Single(stream.OfType(LeaseEventType.Error)).Error.Code);
        }
        var revokeDenied = await Assert.ThrowsAsync<RpcException>(() => beta.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = betaLease.LeaseId }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, revokeDenied.StatusCode);

        // alpha cannot see beta's lease at all: the same answer as for a lease that does not exist.
        var foreign = await Assert.ThrowsAsync<RpcException>(() => alpha.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = betaLease.LeaseId }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, foreign.StatusCode);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, betaLease.LeaseId));
    }

    [Fact]
    public async Task Issue_renewal_rotation_and_revocation_are_audited_with_the_lease_id_only_as_an_hmac()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await StartAsync(vault, redis);
        var alpha = broker.CreateClient().Raw;
        var lease = await alpha.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/short" });
        string rotatedTo;
        await using (var stream = await KeepAliveStream.OpenAsync(alpha, lease.LeaseId))
        {
            await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Revoked).Any(e => e.LeaseId == lease.LeaseId), TimeSpan.FromSeconds(40),
                "renewed, rotated, and the old lease revoked");
            rotatedTo = stream.OfType(LeaseEventType.Rotated).Single().RotatedTo.LeaseId;
            await alpha.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = rotatedTo });
        }

        var oldHmac = AuditStreamReader.Key.Hmac(lease.LeaseId);
        var newHmac = AuditStreamReader.Key.Hmac(rotatedTo);
        IReadOnlyList<(AuditEvent Event, string? Path)> events = [];
        await Eventually.WaitUntilAsync(async () =>
        {
            events = await AuditStreamReader.ReadAllAsync(redis);
            return events.Count(e => e.Event.Action == "revoke" && e.Event.Decision == Decision.Allow) >= 2;
        }, TimeSpan.FromSeconds(10), "both revocations are audited");
        bool Has(string action, string hmac) => events.Any(e => e.Event.Action == action && e.Event.LeaseIdHmac == hmac
            && e.Event.Decision == Decision.Allow && e.Path == "db/short" && e.Event.Caller == "test-alpha");
        Assert.True(Has("issue", oldHmac));
        Assert.True(Has("renew", oldHmac));
        Assert.True(Has("rotate", newHmac));
        Assert.True(Has("revoke", oldHmac));
        Assert.True(Has("revoke", newHmac));
        foreach (var (auditEvent, _) in events)
        {
            var bytes = System.Text.Encoding.UTF8.GetString(Google.Protobuf.MessageExtensions.ToByteArray(auditEvent));
            Assert.DoesNotContain(lease.LeaseId, bytes, StringComparison.Ordinal);
            Assert.DoesNotContain(rotatedTo, bytes, StringComparison.Ordinal);
            Assert.DoesNotContain(lease.Credentials["password"], bytes, StringComparison.Ordinal);
        }
    }
}
