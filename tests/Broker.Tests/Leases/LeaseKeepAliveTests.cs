using System.Diagnostics;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Leases;

[Trait("Category", "Integration")]
public sealed class LeaseKeepAliveTests
{
    [Fact]
    public async Task A_held_lease_is_renewed_then_rotated_before_it_expires_and_the_old_lease_is_revoked_in_vault()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        var client = broker.CreateClient().Raw;

        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/short" });
        Assert.True(lease.Renewable);
        Assert.NotEmpty(lease.Credentials["username"]);
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId);

        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Rotated).Any(), TimeSpan.FromSeconds(40), "the lease is rotated near its max TTL");
        var rotated = stream.Events.First(e => e.Event.Type == LeaseEventType.Rotated);
        var newState = LeaseTestEnvironment.LeaseState(vault, rotated.Event.RotatedTo.LeaseId);
        var timeline = stream.Describe(lease.LeaseId);
        // The new credentials work (live in Vault) while the old ones are still valid: an overlap, not a gap.
        Assert.True(newState == (true, false), $"new lease state {newState}; events: {timeline}");
        Assert.Equal(lease.LeaseId, rotated.Event.LeaseId);
        Assert.NotEqual(lease.Credentials["username"], rotated.Event.RotatedTo.Credentials["username"]);
        Assert.NotEmpty(rotated.Event.RotatedTo.Credentials["password"]);
        var renewedBefore = stream.Events.TakeWhile(e => e.Event.Type != LeaseEventType.Rotated).Where(e => e.Event.Type == LeaseEventType.Renewed).ToList();
        Assert.True(renewedBefore.Count > 0, $"no renewal before the rotation; events: {timeline}");
        Assert.All(renewedBefore, e => Assert.Equal(lease.LeaseId, e.Event.LeaseId));
        // Each renewal moved the expiry forward.
        Assert.True(renewedBefore[0].Event.ExpiresAt.ToDateTimeOffset() > lease.ExpiresAt.ToDateTimeOffset(), $"events: {timeline}");

        // After the overlap the old lease is revoked in Vault and the stream is told.
        await Eventually.WaitUntilAsync(() => LeaseTestEnvironment.LeaseState(vault, lease.LeaseId)?.Revoked == true, TimeSpan.FromSeconds(10),
            "the old lease is revoked after the overlap");
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Revoked).Any(e => e.LeaseId == lease.LeaseId), TimeSpan.FromSeconds(10),
            "the stream gets REVOKED for the old lease");
        // ... and the new lease keeps being renewed on the same stream.
        var newLease = rotated.Event.RotatedTo.LeaseId;
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Renewed).Any(e => e.LeaseId == newLease), TimeSpan.FromSeconds(10),
            "the rotated-to lease is renewed");
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, newLease));
        broker.Logs.AssertNoneContain([lease.LeaseId, newLease, lease.Credentials["password"], rotated.Event.RotatedTo.Credentials["password"]]);
    }

    [Fact]
    public async Task A_client_that_disconnects_and_does_not_come_back_has_its_leases_revoked_after_the_grace_period()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var grace = TimeSpan.FromSeconds(3);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, grace: "00:00:03"));
        var client = broker.CreateClient().Raw;
        var first = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        var second = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });

        var stream = await KeepAliveStream.OpenAsync(client, first.LeaseId, second.LeaseId);
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Attached).Count() == 2, because: "both leases are attached");
        // Started before the disconnect, so it measures at least the time since the broker saw the stream end: on a slow
        // machine it can only read longer, never shorter, and a revocation within the grace period cannot pass unseen.
        var sinceBeforeTheDisconnect = Stopwatch.StartNew();
        await stream.DisposeAsync();

        await Eventually.WaitUntilAsync(() => LeaseTestEnvironment.LeaseState(vault, first.LeaseId)?.Revoked == true
            && LeaseTestEnvironment.LeaseState(vault, second.LeaseId)?.Revoked == true, grace + TimeSpan.FromSeconds(30), "both leases are revoked");
        Assert.True(sinceBeforeTheDisconnect.Elapsed >= grace, $"revoked {sinceBeforeTheDisconnect.Elapsed} after the disconnect, within the {grace} grace period");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task A_client_that_reconnects_to_another_replica_within_the_grace_period_keeps_its_lease_renewed_and_unrevoked()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var replicaA = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis, grace: "00:00:02"));
        await using var replicaB = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis, grace: "00:00:02"));
        var lease = await replicaA.CreateClient().Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });

        var onA = await KeepAliveStream.OpenAsync(replicaA.CreateClient().Raw, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => onA.OfType(LeaseEventType.Renewed).Any(), because: "replica A renews the lease");
        await onA.DisposeAsync();
        var disconnectedAt = DateTimeOffset.UtcNow;

        await using var onB = await KeepAliveStream.OpenAsync(replicaB.CreateClient().Raw, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => onB.OfType(LeaseEventType.Attached).Any(), because: "replica B takes the lease over");
        // Keep going until renewals on B span well past the grace period (plus sweeps) since A lost the stream.
        await Eventually.WaitUntilAsync(() => onB.Events.Any(e => e.Event.Type == LeaseEventType.Renewed && e.Received > disconnectedAt + TimeSpan.FromSeconds(3)),
            TimeSpan.FromSeconds(20), "replica B keeps renewing");
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, lease.LeaseId));
        Assert.DoesNotContain(onB.Events, e => e.Event.Type is LeaseEventType.Revoked or LeaseEventType.Expired or LeaseEventType.Error);

        // The shared registry holds no lease id, credential or path in readable form.
        foreach (var (key, contents) in await redis.DumpAsync())
        {
            Assert.DoesNotContain(lease.LeaseId, key, StringComparison.Ordinal);
            foreach (var content in contents)
            {
                var text = System.Text.Encoding.UTF8.GetString(content);
                Assert.DoesNotContain(lease.LeaseId, text, StringComparison.Ordinal);
                Assert.DoesNotContain(lease.Credentials["password"], text, StringComparison.Ordinal);
                Assert.DoesNotContain("db/steady", text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task RevokeLease_revokes_in_vault_and_refuses_unknown_leases_with_not_found()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        var client = broker.CreateClient().Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId, "database/creds/steady/unknown");
        await Eventually.WaitUntilAsync(() => stream.Events.Count >= 2, because: "attach answers for both ids");
        var unknown = Assert.Single(stream.OfType(LeaseEventType.Error));
        Assert.Equal((int)StatusCode.NotFound, unknown.Error.Code);

        await client.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lease.LeaseId });
        Assert.Equal((false, true), LeaseTestEnvironment.LeaseState(vault, lease.LeaseId));
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Revoked).Any(), because: "the stream hears of the revocation");
        var again = await Assert.ThrowsAsync<RpcException>(() => client.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lease.LeaseId }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
        var kv = await Assert.ThrowsAsync<RpcException>(() => client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "vault/app/db" }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, kv.StatusCode);
    }

    [Fact]
    public async Task The_lease_keeper_exposes_renewals_and_the_rotated_credentials_as_its_current_lease()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        await using var keeper = await LeaseKeeper.StartAsync(broker.CreateClient(), "db/short",
            new LeaseKeeperOptions { InitialBackoff = TimeSpan.FromMilliseconds(50) });
        var first = keeper.Current;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new List<LeaseEventType>();
        await foreach (var change in keeper.ChangesAsync(cancel.Token))
        {
            seen.Add(change.Type);
            if (change.Type == LeaseEventType.Rotated)
            {
                break;
            }
        }
        Assert.Contains(LeaseEventType.Renewed, seen);
        Assert.NotEqual(first.LeaseId, keeper.Current.LeaseId);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, keeper.Current.LeaseId));
        Assert.Equal(1, keeper.Connections);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task The_lease_keeper_reconnects_after_its_connection_drops_and_another_replica_takes_the_lease_over()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var replicaA = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis, grace: "00:00:02"));
        await using var replicaB = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis, grace: "00:00:02"));
        await using var balancer = new TcpProxy(replicaA.Address);
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = balancer.Address,
            Token = BrokerHost.TestToken,
            DefaultTimeout = TimeSpan.FromSeconds(30),
        });
        using var _ = channel;
        await using var keeper = await LeaseKeeper.StartAsync(client, "db/steady", new LeaseKeeperOptions { InitialBackoff = TimeSpan.FromMilliseconds(50) });
        var leaseId = keeper.Current.LeaseId;
        var events = new System.Collections.Concurrent.ConcurrentQueue<(DateTimeOffset At, LeaseEventType Type)>();
        using var cancel = new CancellationTokenSource();
        var listening = Task.Run(async () =>
        {
            try
            {
                await foreach (var change in keeper.ChangesAsync(cancel.Token))
                {
                    events.Enqueue((DateTimeOffset.UtcNow, change.Type));
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await Eventually.WaitUntilAsync(() => events.Any(e => e.Type == LeaseEventType.Renewed), because: "replica A renews the lease");

        balancer.Target = replicaB.Address;
        balancer.DropAll();
        var droppedAt = DateTimeOffset.UtcNow;
        await Eventually.WaitUntilAsync(() => keeper.Connections >= 2, because: "the keeper reconnects");
        await Eventually.WaitUntilAsync(() => events.Any(e => e.Type == LeaseEventType.Renewed && e.At > droppedAt + TimeSpan.FromSeconds(3)),
            TimeSpan.FromSeconds(20), "renewals go on through replica B past the grace period");

        Assert.Equal(leaseId, keeper.Current.LeaseId);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, leaseId));
        Assert.True(replicaB.Services.GetRequiredService<SecretsBroker.Broker.Leases.LeaseKeeper>().AttachedCount == 1);
        Assert.DoesNotContain(events, e => e.Type is LeaseEventType.Revoked or LeaseEventType.Expired or LeaseEventType.Error);
        await cancel.CancelAsync();
        await listening;
    }

    [Fact]
    public async Task Attached_leases_and_renewals_show_up_in_the_metrics_the_alerts_use()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        var client = broker.CreateClient().Raw;
        var lease = await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var stream = await KeepAliveStream.OpenAsync(client, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => stream.OfType(LeaseEventType.Renewed).Any(), TimeSpan.FromSeconds(15), "a renewal");

        var samples = ManagementPort.Parse(await broker.ScrapeAsync());
        Assert.Equal(1, samples.Sum("secretsbroker_lease_active", ("mount", "db")));
        Assert.True(samples.Sum("secretsbroker_lease_renewals_total", ("mount", "db"), ("outcome", "renewed")) >= 1);
        broker.Logs.AssertNoneContain([lease.LeaseId, lease.Credentials["password"]]);
    }
}
