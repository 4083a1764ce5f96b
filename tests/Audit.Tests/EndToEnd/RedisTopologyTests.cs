using System.Net;
using System.Text;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.EndToEnd;

/// <summary>
/// The audit service on the two highly available Redis topologies (docs/operations.md, "Redis topologies"): through
/// Sentinel across a master failover with a broker process writing, and on a three-master Cluster (consumer group,
/// acknowledgements and trims on the master that holds the stream's slot, and a restart of that master).
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisTopologyTests
{
    [Fact]
    public async Task Through_Sentinel_every_read_served_across_a_master_failover_is_stored_exactly_once()
    {
        using var directory = new TestDirectory();
        await using var deployment = await RedisSentinel.StartAsync();
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0",
             $"--Broker:Redis:Configuration={deployment.ConnectionString}", $"--Broker:Audit:Key={TestEvents.KeyBase64}",
             $"--Broker:Cache:Encryption:NameKey={TestKey("names")}", "--Broker:Cache:Encryption:Keys:0:Id=k1",
             $"--Broker:Cache:Encryption:Keys:0:Secret={TestKey("k1")}", "--Broker:Cache:Encryption:Keys:0:Active=true",
             $"--Broker:Audit:SpoolDirectory={Path.Combine(directory.Path, "spool")}", "--Broker:RateLimits:Enabled=false"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        var address = await broker.WaitForListeningAddressAsync();
        await using var audit = await AuditServiceProcess.StartAsync(deployment.ConnectionString, Path.Combine(directory.Path, "audit.db"));
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = address,
            Token = "dev-only-token",
            MaxAttempts = 1,
        });
        using var _ = channel;

        var served = 0;
        using var stop = new CancellationTokenSource();
        var reads = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await client.GetSecretAsync("demo/ml/training-db");
                Interlocked.Increment(ref served);
            }
        });
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= 30, because: "reads before the crash");
        await audit.WaitUntilStoredAsync(1);
        await deployment.KillMasterAndWaitForFailoverAsync();
        var atFailover = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atFailover + 30, TimeSpan.FromSeconds(60), "reads after the failover");
        await stop.CancelAsync();
        await reads;

        // Both the broker and the audit service found the promoted master by themselves.
        await audit.WaitUntilStoredAsync(served);
        var stored = await audit.QueryAllAsync();
        Assert.Equal(served, stored.Count);
        Assert.Equal(served, stored.Select(s => s.Event.Id).Distinct().Count());
        var verify = await audit.Client.VerifyAsync(new V1.VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
        // And it trims there: the drained stream on the promoted master ends empty.
        var promoted = await deployment.Replica.DatabaseAsync();
        await Eventually.WaitUntilAsync(async () => await promoted.StreamLengthAsync(AuditStream.DefaultKey) == 0, TimeSpan.FromSeconds(30),
            "the drained stream on the promoted master is trimmed");
    }

    [Fact]
    public async Task On_a_cluster_the_consumer_group_stores_acknowledges_and_trims_on_the_streams_master_and_survives_its_restart()
    {
        using var directory = new TestDirectory();
        await using var cluster = await RedisCluster.StartAsync();
        await using var audit = await AuditServiceProcess.StartAsync(cluster.ConnectionString, Path.Combine(directory.Path, "audit.db"));
        await using var connection = await ConnectionMultiplexer.ConnectAsync(cluster.ConnectionString + ",abortConnect=false");
        var database = connection.GetDatabase();

        var first = Enumerable.Range(0, 30).Select(i => TestEvents.Make("cluster-caller", $"app/cluster/{i}")).ToList();
        await TestEvents.AppendAsync(database, first);
        await audit.WaitUntilStoredAsync(first.Count);
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 0, TimeSpan.FromSeconds(30),
            "the drained stream is trimmed");
        var group = Assert.Single(await database.StreamGroupInfoAsync(AuditStream.DefaultKey));
        Assert.Equal(0, group.PendingMessageCount);

        // The master holding the stream's slot crashes and comes back empty (no persistence): the group is gone (NOGROUP);
        // the service creates it again and stores what brokers append from then on.
        var owner = (IPEndPoint)(await database.IdentifyEndpointAsync(AuditStream.DefaultKey))!;
        var master = Assert.Single(cluster.Masters, m => m.Port == owner.Port);
        await master.KillAsync();
        await master.RestartAsync();
        await cluster.WaitUntilHealthyAsync();
        var second = Enumerable.Range(0, 30).Select(i => TestEvents.Make("cluster-caller", $"app/cluster/after/{i}")).ToList();
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                await TestEvents.AppendAsync(database, second.Take(1));
                return true;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the restarted master takes appends");
        await TestEvents.AppendAsync(database, second.Skip(1));
        await audit.WaitUntilStoredAsync(first.Count + second.Count);

        var stored = await audit.QueryAllAsync();
        Assert.Equal(first.Concat(second).Select(e => e.Id).Order(), stored.Select(s => s.Event.Id).Order());
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 0, TimeSpan.FromSeconds(30),
            "trimmed again after the restart");
        var verify = await audit.Client.VerifyAsync(new V1.VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
    }

    /// <summary>A fixed 32-byte test key (never a real one), base64.</summary>
    private static string TestKey(string name) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"FAKE-audit-topology-{name}".PadRight(32, '!')[..32]));
}
