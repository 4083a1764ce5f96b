using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.Client;
using SecretsBroker.V1;
using V1Client = SecretsBroker.V1.SecretsBroker.SecretsBrokerClient;

namespace SecretsBroker.Broker.Tests.Leases;

/// <summary>
/// Streams against a real broker on Kestrel, the Vault emulator and redis-server (issue 17 findings 1, 3, 6; issue 18
/// leases): a grant removed from the policy file mid-stream, a JWT that expires mid-stream, a deny rule under a watched
/// prefix, a caller with another's subject, and Vault failing renewals with 500s.
/// </summary>
[Trait("Category", "Integration")]
public sealed class StreamAuthorizationTests
{
    private const string Subject = "system:serviceaccount:team-a:trainer";

    private static string Policy(bool dbGranted) => $$"""
        policies:
          - name: alpha
            appliesTo: { subjects: [test-alpha, "{{Subject}}"] }
            rules:
              - paths: ["vault/**"]
                capabilities: [read, list, watch]
              - paths: ["vault/app/break-glass/**"]
                capabilities: [read, list, watch]
                effect: deny
        {{(dbGranted ? "      - paths: [\"db/**\"]\n        capabilities: [issue, renew, revoke]\n" : "")}}
        """;

    private static async Task<BrokerHost> StartAsync(VaultEmulatorHost vault, RedisServer redis, TestDirectory directory, TestJwtIssuer? jwt = null,
        string grace = "00:00:01", Action<Dictionary<string, string?>>? configure = null)
    {
        directory.WriteFile("policy.yaml", Policy(dbGranted: true));
        var settings = LeaseTestEnvironment.Broker(vault, redis, grace);
        settings["Broker:Policy:File"] = "policy.yaml";
        if (jwt is not null)
        {
            settings["Broker:Auth:Jwt:Enabled"] = "true";
            settings["Broker:Auth:Jwt:Issuer"] = TestJwtIssuer.Issuer;
            settings["Broker:Auth:Jwt:Audiences:0"] = TestJwtIssuer.Audience;
            settings["Broker:Auth:Jwt:JwksUrl"] = jwt.JwksUrl;
            settings["Broker:Auth:Jwt:RequireHttpsMetadata"] = "false";
            settings["Broker:Auth:Jwt:ClockSkew"] = "00:00:00";
        }
        configure?.Invoke(settings);
        return await BrokerHost.StartAsync(settings, directory);
    }

    [Fact]
    public async Task A_grant_removed_mid_stream_gets_an_error_no_more_renewals_or_rotations_and_the_lease_is_revoked_after_the_grace_period()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var directory = new TestDirectory();
        await using var broker = await StartAsync(vault, redis, directory, grace: "00:00:02");
        var client = broker.CreateClient().Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Renewed).Any(), TimeSpan.FromSeconds(20), "the lease is renewed while granted");

        directory.WriteFile("policy.yaml", Policy(dbGranted: false));
        var policy = broker.Services.GetRequiredService<PolicyEvaluator>();
        var alpha = new CallerIdentity("test-alpha", "dev-token", new Dictionary<string, string>());
        await Eventually.WaitUntilAsync(() => !policy.IsAllowed(alpha, Capability.Renew, "db/steady"), TimeSpan.FromSeconds(20), "the edited policy is loaded");

        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Error).Any(e => e.LeaseId == lease.LeaseId), TimeSpan.FromSeconds(20),
            "the lease's next renewal is refused on the stream");
        var error = stream.OfType(LeaseEventType.Error).First(e => e.LeaseId == lease.LeaseId);
        Assert.Equal((int)StatusCode.PermissionDenied, error.Error.Code);
        Assert.Contains("no longer holds 'renew'", error.Error.Message);
        var refusedAt = DateTimeOffset.UtcNow;

        await Eventually.WaitUntilAsync(() => LeaseTestEnvironment.LeaseState(vault, lease.LeaseId) is (_, true), TimeSpan.FromSeconds(20),
            "the lease is revoked once the grace period is over");
        Assert.True(DateTimeOffset.UtcNow - refusedAt >= TimeSpan.FromSeconds(1.5), "not revoked before the grace period");
        var afterError = stream.Events.Select(e => e.Event).SkipWhile(e => e != error).Skip(1).ToList();
        Assert.DoesNotContain(afterError, e => e.Type is LeaseEventType.Renewed or LeaseEventType.Rotated);
        // Attaching it again is refused as well.
        await using var again = await KeepAliveStream.OpenAsync(client, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => !again.Events.IsEmpty, because: "the attach is answered");
        Assert.NotEqual(LeaseEventType.Attached, again.Events.First().Event.Type);

        var hmac = AuditStreamReader.Key.Hmac(lease.LeaseId);
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis)).Any(e => e.Event.Action == "renew"
            && e.Event.Decision == Decision.Deny && e.Event.LeaseIdHmac == hmac && e.Event.GrpcStatus == (int)StatusCode.PermissionDenied
            && e.Event.Caller == "test-alpha"), TimeSpan.FromSeconds(10), "the refusal is audited");
    }

    [Fact]
    public async Task Streams_of_an_expiring_jwt_end_unauthenticated_at_its_expiry_and_are_audited()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var jwt = await TestJwtIssuer.StartAsync();
        await using var broker = await StartAsync(vault, redis, new TestDirectory(), jwt);
        var expires = DateTime.UtcNow.AddSeconds(5);
        var token = jwt.IssueServiceAccountToken("team-a", "trainer", expires: expires);
        var client = broker.CreateClient(token).Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });

        using var keepAlive = client.KeepAlive();
        await keepAlive.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { lease.LeaseId } });
        using var watch = client.WatchSecrets(new WatchSecretsRequest { Prefixes = { "vault/app" } });
        await watch.ResponseHeadersAsync;

        var renewed = 0;
        var keepAliveEnd = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var e in keepAlive.ResponseStream.ReadAllAsync())
            {
                renewed += e.Type == LeaseEventType.Renewed ? 1 : 0;
            }
        });
        var endedAt = DateTime.UtcNow;
        Assert.Equal(StatusCode.Unauthenticated, keepAliveEnd.StatusCode);
        Assert.Contains("credential expired", keepAliveEnd.Status.Detail);
        Assert.True(renewed >= 1, "renewed while the token was valid");
        // exp has second precision: the stream ends at the token's expiry, not before.
        Assert.True(endedAt >= expires.AddSeconds(-1), $"ended {expires - endedAt} before the expiry");
        var watchEnd = await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.Unauthenticated, watchEnd.StatusCode);

        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis)).Count(e => e.Event.Action == "authenticate"
            && e.Event.Decision == Decision.Deny && e.Event.Caller == Subject && e.Event.GrpcStatus == (int)StatusCode.Unauthenticated) >= 2,
            TimeSpan.FromSeconds(10), "both ends are audited");
    }

    [Fact]
    public async Task The_csharp_lease_keeper_reads_the_token_file_again_on_unauthenticated_and_keeps_its_lease()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var jwt = await TestJwtIssuer.StartAsync();
        var directory = new TestDirectory();
        await using var broker = await StartAsync(vault, redis, directory, jwt);
        var tokenFile = directory.WriteFile("token", jwt.IssueServiceAccountToken("team-a", "trainer", expires: DateTime.UtcNow.AddSeconds(5)));
        var writtenAt = File.GetLastWriteTimeUtc(tokenFile);
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = broker.Address,
            TokenFile = tokenFile,
            MaxAttempts = 1,
            DefaultTimeout = TimeSpan.FromSeconds(30),
        });
        using var _ = channel;
        await using var keeper = await LeaseKeeper.StartAsync(client, "db/steady");
        var leaseId = keeper.Current.LeaseId;

        // The kubelet refreshes the token in place; the timestamp is set back so only a forced re-read can see it.
        File.WriteAllText(tokenFile, jwt.IssueServiceAccountToken("team-a", "trainer", expires: DateTime.UtcNow.AddMinutes(10)));
        File.SetLastWriteTimeUtc(tokenFile, writtenAt);

        await Eventually.WaitUntilAsync(() => keeper.Reauthentications >= 1, TimeSpan.FromSeconds(20), "the stream ends at the first token's expiry");
        var renewedAfter = 0;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await foreach (var e in keeper.ChangesAsync(cancel.Token))
        {
            if (e.Type == LeaseEventType.Renewed && ++renewedAfter == 2)
            {
                break;
            }
        }
        Assert.Equal(leaseId, keeper.Current.LeaseId);
        Assert.False(keeper.Lost);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, leaseId));
        Assert.Equal(1, keeper.Reauthentications);
    }

    [Fact]
    public async Task A_watched_prefix_withholds_events_of_deny_ruled_paths_and_audits_the_refusal()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await StartAsync(vault, redis, new TestDirectory());
        await LeaseTestEnvironment.WriteKvAsync(vault, "app/break-glass/root", "FAKE-root-v1");
        var client = broker.CreateClient().Raw;
        using var cancel = new CancellationTokenSource();
        using var watch = client.WatchSecrets(new WatchSecretsRequest { Prefixes = { "vault/app" } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;
        var events = new List<SecretEvent>();
        var reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in watch.ResponseStream.ReadAllAsync(cancel.Token))
                {
                    lock (events)
                    {
                        events.Add(e);
                    }
                }
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException)
            {
            }
        });

        await LeaseTestEnvironment.WriteKvAsync(vault, "app/break-glass/root", "FAKE-root-v2");
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis)).Any(e => e.Event.Action == "watch"
            && e.Event.Decision == Decision.Deny && e.Path == "vault/app/break-glass/root"), TimeSpan.FromSeconds(15), "the withheld event is audited");
        await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-watch-v3");
        await Eventually.WaitUntilAsync(() => { lock (events) { return events.Count >= 1; } }, TimeSpan.FromSeconds(15), "the allowed change arrives");
        await cancel.CancelAsync();
        await reader;
        lock (events)
        {
            Assert.Equal(["vault/app/db"], events.Select(e => e.Path));
        }
    }

    [Fact]
    public async Task A_caller_with_the_same_subject_but_another_auth_method_or_namespace_cannot_revoke_or_attach_the_lease()
    {
        const string devToken = "FAKE-test-token-same-subject";
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var jwt = await TestJwtIssuer.StartAsync();
        await using var broker = await StartAsync(vault, redis, new TestDirectory(), jwt, configure: settings =>
        {
            settings["Broker:Auth:DevTokens:Tokens:1:Subject"] = Subject;
            settings["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(devToken);
        });
        var owner = broker.CreateClient(jwt.IssueServiceAccountToken("team-a", "trainer")).Raw;
        var lease = await owner.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });

        V1Client[] impostors =
        [
            broker.CreateClient(devToken).Raw,                                                                  // same subject, dev token
            broker.CreateClient(jwt.IssueServiceAccountToken("team-b", "trainer", subject: Subject)).Raw,     // same subject, other namespace
        ];
        foreach (var impostor in impostors)
        {
            var revoke = await Assert.ThrowsAsync<RpcException>(() => impostor.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lease.LeaseId }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, revoke.StatusCode);
            await using var stream = await KeepAliveStream.OpenAsync(impostor, lease.LeaseId);
            await Eventually.WaitUntilAsync(() => !stream.Events.IsEmpty, because: "the attach is answered");
            Assert.Equal((int)StatusCode.NotFound, Assert.Single(stream.OfType(LeaseEventType.Error)).Error.Code);
        }
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, lease.LeaseId));
        await owner.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lease.LeaseId });
        Assert.Equal((false, true), LeaseTestEnvironment.LeaseState(vault, lease.LeaseId));
    }

    [Fact]
    public async Task Renewals_failing_with_vault_500s_rotate_to_fresh_credentials_before_the_lease_expires()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await StartAsync(vault, redis, new TestDirectory(),
            configure: settings => settings["Broker:Leases:RotateOnFailureWindow"] = "0.25");
        var client = broker.CreateClient().Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        // Vault answers every renewal with 500 (sdk/logical/response_util.go, RespondErrorCommon: an uncoded error is a 500
        // with {"errors":[...]}); issuing (database/creds) still works.
        vault.SetFaults("""{ "path_prefix": "sys/leases/renew", "error_count": 1000, "error_status": 500 }""");
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId);

        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Rotated).Any(e => e.LeaseId == lease.LeaseId), TimeSpan.FromSeconds(20),
            "the lease is rotated while renewals fail");
        var rotated = stream.OfType(LeaseEventType.Rotated).First(e => e.LeaseId == lease.LeaseId);
        vault.ResetFaults();
        Assert.DoesNotContain(stream.OfType(LeaseEventType.Expired), e => e.LeaseId == lease.LeaseId);
        Assert.True(rotated.Time.ToDateTimeOffset() < lease.ExpiresAt.ToDateTimeOffset(), "rotated before the old lease expired");
        Assert.NotEqual(lease.Credentials["username"], rotated.RotatedTo.Credentials["username"]);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, rotated.RotatedTo.LeaseId));
        Assert.True(stream.OfType(LeaseEventType.Error).Any(e => e.LeaseId == lease.LeaseId), "the failed renewals were reported");
    }
}
