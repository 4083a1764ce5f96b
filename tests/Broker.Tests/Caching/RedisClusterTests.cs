using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>
/// Two broker replicas on a real Redis Cluster of three masters: the shared cache, the lease registry (multi-key Lua
/// scripts, one hash-tagged slot), watch events, the audit stream, and reads that go on while a master is killed and
/// restarted.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisClusterTests
{
    [Fact]
    public async Task Cache_leases_watches_and_audit_work_on_a_three_master_cluster_and_reads_survive_a_master_restart()
    {
        await using var cluster = await RedisCluster.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var settings = LeaseTestEnvironment.Broker(vault);
        foreach (var (key, value) in CacheTestSettings.WithRedis(cluster.ConnectionString))
        {
            settings[key] = value;
        }
        await using var replicaA = await BrokerHost.StartAsync(settings);
        await using var replicaB = await BrokerHost.StartAsync(settings);
        var clientA = replicaA.CreateClient();
        var clientB = replicaB.CreateClient();

        // Shared cache: A reads the backend, B is served from Redis.
        Assert.Equal(ValueSource.Backend, (await clientA.Raw.GetSecretAsync(new GetSecretRequest { Path = "vault/app/db" })).Secret.Serving.Source);
        Assert.Equal(ValueSource.L2, (await clientB.Raw.GetSecretAsync(new GetSecretRequest { Path = "vault/app/db" })).Secret.Serving.Source);

        // Lease registry: issued and kept on A, taken over by B (Lua scripts over several keys: CROSSSLOT unless one slot).
        var lease = await clientA.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        var onA = await KeepAliveStream.OpenAsync(clientA.Raw, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => onA.OfType(LeaseEventType.Renewed).Any(), because: "replica A renews the lease");
        await onA.DisposeAsync();
        await using var onB = await KeepAliveStream.OpenAsync(clientB.Raw, lease.LeaseId);
        await Eventually.WaitUntilAsync(() => onB.OfType(LeaseEventType.Renewed).Any(), TimeSpan.FromSeconds(20), "replica B renews the lease it took over");
        Assert.DoesNotContain(onB.Events, e => e.Event.Type is LeaseEventType.Error or LeaseEventType.Revoked or LeaseEventType.Expired);
        var keys = await cluster.KeysAsync();
        var leaseKeys = keys.Where(k => k.StartsWith("{sb:leases}:", StringComparison.Ordinal)).ToList();
        Assert.Contains(leaseKeys, k => k.Contains(":lease-owner:", StringComparison.Ordinal));
        Assert.Single(await Task.WhenAll(leaseKeys.Select(cluster.KeySlotAsync)).ContinueWith(t => t.Result.Distinct()));

        // Watch: a new KV version reaches a watcher on B.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var watch = clientB.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;
        var version = await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-cluster-v3");
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal(version.ToString(System.Globalization.CultureInfo.InvariantCulture), watch.ResponseStream.Current.Version);
        await Eventually.WaitUntilAsync(async () => (await clientA.GetSecretAsync("vault/app/db")).Version == watch.ResponseStream.Current.Version,
            TimeSpan.FromSeconds(10), "replica A serves the new version");

        // Audit: the events are in the stream, on whichever master holds its slot.
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(cluster.ConnectionString + ",abortConnect=false"))
        {
            var streams = new List<long>();
            foreach (var key in keys.Concat(await cluster.KeysAsync()).Distinct())
            {
                if (await admin.GetDatabase().KeyTypeAsync(key) == RedisType.Stream)
                {
                    streams.Add(await admin.GetDatabase().StreamLengthAsync(key));
                }
            }
            Assert.True(streams.Sum() > 0, "no audit events in any stream of the cluster");
        }

        // A master is killed and restarted while B reads: every read is answered (L1 or the backend stand in for the lost slots).
        var failures = new List<string>();
        var reads = 0;
        using var stopReading = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!stopReading.IsCancellationRequested)
            {
                try
                {
                    await clientB.Raw.GetSecretAsync(new GetSecretRequest { Path = "vault/app/db" });
                    Interlocked.Increment(ref reads);
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
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref reads) >= 20, because: "reads are flowing");
        await cluster.Masters[0].KillAsync();
        var readsBeforeRestart = Volatile.Read(ref reads);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref reads) >= readsBeforeRestart + 50, TimeSpan.FromSeconds(60), "reads go on without a master");
        await cluster.Masters[0].RestartAsync();
        await cluster.WaitUntilHealthyAsync();
        var readsAfterRestart = Volatile.Read(ref reads);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref reads) >= readsAfterRestart + 50, TimeSpan.FromSeconds(60), "reads go on after the restart");
        await stopReading.CancelAsync();
        await reader;
        Assert.Empty(failures);
    }
}
