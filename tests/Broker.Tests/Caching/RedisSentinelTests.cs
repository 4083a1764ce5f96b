using Grpc.Core;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>
/// A broker that finds its Redis through Sentinel (<c>serviceName=</c>): the master is killed (SIGKILL) during steady
/// reads. Reads go on, audit events spool and are replayed into the promoted master's stream (every served read
/// exactly once), a lease kept alive across the failover stays attached and renewed, and the broker writes to the
/// promoted master on its own.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisSentinelTests
{
    private const string Path = "vault/app/db";

    [Fact]
    public async Task Killing_the_master_during_reads_fails_over_with_no_failed_read_no_lost_event_and_no_dropped_lease()
    {
        await using var deployment = await RedisSentinel.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var settings = LeaseTestEnvironment.Broker(vault);
        foreach (var (key, value) in CacheTestSettings.WithRedis(deployment.ConnectionString))
        {
            settings[key] = value;
        }
        await using var broker = await BrokerHost.StartAsync(settings);
        var client = broker.CreateClient();

        // Through Sentinel to the master: the lease registry and the audit stream are written there.
        var lease = await client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var keepAlive = await KeepAliveStream.OpenAsync(client.Raw, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => keepAlive.OfType(LeaseEventType.Renewed).Any(), TimeSpan.FromSeconds(20), "the lease is renewed");
        await Eventually.WaitUntilAsync(async () => (await deployment.Master.DumpAsync()).Any(k => k.Key.Contains(":lease-owner:", StringComparison.Ordinal)),
            because: "the lease registry is written on the master");

        // Strict audit (the default): a read is answered only once its event is in the stream or the spool.
        var served = 0;
        var failures = new List<string>();
        using var stopReading = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!stopReading.IsCancellationRequested)
            {
                try
                {
                    await client.Raw.GetSecretAsync(new GetSecretRequest { Path = Path });
                    Interlocked.Increment(ref served);
                }
                catch (RpcException ex)
                {
                    lock (failures)
                    {
                        failures.Add(ex.Status.ToString());
                    }
                }
            }
        });
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= 50, because: "reads before the crash");

        await deployment.Master.KillAsync();
        var atKill = Volatile.Read(ref served);
        await deployment.WaitForFailoverAsync();
        var failedOverAt = DateTimeOffset.UtcNow;
        var atFailover = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atFailover + 50, TimeSpan.FromSeconds(60), "reads after the failover");

        // The broker found the promoted master by itself: the spool was replayed into it and new events go straight there.
        await Eventually.WaitUntilAsync(() => broker.Logs.Lines.Any(l => l.Contains("audit spool was replayed", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), "the events spooled during the failover are replayed");
        // A write that needs Redis: a new lease is registered in the promoted master's lease registry.
        var ownersBefore = (await deployment.Replica.DumpAsync()).Count(k => k.Key.Contains(":lease-owner:", StringComparison.Ordinal));
        var second = await client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        await using var secondKeepAlive = await KeepAliveStream.OpenAsync(client.Raw, second.LeaseId);
        await Eventually.WaitUntilAsync(async () => (await deployment.Replica.DumpAsync()).Count(k => k.Key.Contains(":lease-owner:", StringComparison.Ordinal)) > ownersBefore,
            TimeSpan.FromSeconds(30), "the new lease is registered on the promoted master");

        // The first lease stayed attached through the failover and is renewed after it.
        await Eventually.WaitUntilAsync(() => keepAlive.Events.Any(e => e.Event.Type == LeaseEventType.Renewed && e.Received > failedOverAt),
            TimeSpan.FromSeconds(20), "the lease is renewed after the failover");
        await stopReading.CancelAsync();
        await reader;
        Assert.Empty(failures);
        Assert.DoesNotContain(keepAlive.Events, e => e.Event.Type is LeaseEventType.Error or LeaseEventType.Revoked or LeaseEventType.Expired);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, lease.LeaseId));

        // Stored == served: every answered read has its event in the promoted master's stream, none lost in the failover.
        var total = Volatile.Read(ref served);
        Assert.True(total > atKill, "no read was answered after the master died");
        await Eventually.WaitUntilAsync(async () => (await ReadsInStreamAsync(deployment.Replica)).Count >= total, TimeSpan.FromSeconds(30),
            "every served read's event in the stream");
        var ids = await ReadsInStreamAsync(deployment.Replica);
        // An XADD applied just before the master died, whose answer was lost, is spooled and sent again (same event id).
        Assert.Equal(total, ids.Count);
    }

    /// <summary>The distinct ids of the read events for <see cref="Path"/> in the stream of <paramref name="master"/>.</summary>
    private static async Task<HashSet<string>> ReadsInStreamAsync(RedisServer master) =>
        [.. (await AuditStreamReader.ReadAllAsync(master)).Where(e => e.Path == Path && e.Event.Action == "read").Select(e => e.Event.Id)];
}
