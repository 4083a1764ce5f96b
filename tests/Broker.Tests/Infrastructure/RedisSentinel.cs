using System.Globalization;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real Sentinel deployment on loopback: one master, one replica and three Sentinels (quorum 2) watching it under
/// <see cref="ServiceName"/>, as the Redis docs' "basic setup with three boxes" (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/).
/// Failure detection is shortened (down-after 1 s) so a killed master is replaced within seconds.
/// </summary>
public sealed class RedisSentinel : IAsyncDisposable
{
    public const string ServiceName = "sb-test";

    private readonly TestDirectory _directory;

    private RedisSentinel(TestDirectory directory, RedisServer master, RedisServer replica, IReadOnlyList<RedisServer> sentinels)
    {
        _directory = directory;
        Master = master;
        Replica = replica;
        Sentinels = sentinels;
    }

    /// <summary>The master at start (after a failover, the replica is the master).</summary>
    public RedisServer Master { get; }

    /// <summary>The replica at start: the only candidate for promotion.</summary>
    public RedisServer Replica { get; }

    public IReadOnlyList<RedisServer> Sentinels { get; }

    /// <summary>The value of <c>Broker:Redis:Configuration</c> (and the audit service's <c>Audit:Ingestion:Redis</c>): the Sentinels and the service name.</summary>
    public string ConnectionString => string.Join(',', Sentinels.Select(s => s.ConnectionString)) + $",serviceName={ServiceName}";

    public static async Task<RedisSentinel> StartAsync()
    {
        var directory = new TestDirectory();
        var servers = new List<RedisServer>();
        try
        {
            // A replica writes the master's snapshot to dump.rdb in its working directory on every full sync: keep it in the test folder.
            var master = await RedisServer.StartAsync(extraArguments: ["--dir", Directory.CreateDirectory(Path.Combine(directory.Path, "master")).FullName]);
            servers.Add(master);
            var replica = await RedisServer.StartAsync(extraArguments: ["--replicaof", "127.0.0.1", Port(master),
                "--dir", Directory.CreateDirectory(Path.Combine(directory.Path, "replica")).FullName]);
            servers.Add(replica);
            await WaitForInfoAsync(replica, "master_link_status:up", "the replica to finish its first sync");
            var sentinels = new List<RedisServer>();
            for (var i = 0; i < 3; i++)
            {
                // Sentinel rewrites its configuration file: one per Sentinel, in the test folder.
                var file = directory.WriteFile($"sentinel-{i}.conf", string.Join('\n',
                    $"sentinel monitor {ServiceName} 127.0.0.1 {Port(master)} 2",
                    $"sentinel down-after-milliseconds {ServiceName} 1000",
                    $"sentinel failover-timeout {ServiceName} 10000",
                    $"sentinel parallel-syncs {ServiceName} 1",
                    ""));
                var sentinel = await RedisServer.StartSentinelAsync(file);
                servers.Add(sentinel);
                sentinels.Add(sentinel);
            }
            var deployment = new RedisSentinel(directory, master, replica, sentinels);
            // A Sentinel learns of the replica from the master's INFO and of the other Sentinels from their hello messages;
            // until every one knows both, a failover could not reach quorum or would have nothing to promote.
            foreach (var sentinel in sentinels)
            {
                await Eventually.WaitUntilAsync(async () =>
                {
                    var state = await SentinelMasterStateAsync(sentinel);
                    return state.GetValueOrDefault("num-slaves") == "1" && state.GetValueOrDefault("num-other-sentinels") == "2";
                }, TimeSpan.FromSeconds(60), $"Sentinel on port {sentinel.Port} to know the replica and the two other Sentinels");
            }
            return deployment;
        }
        catch
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Kills the master (SIGKILL) and waits until every Sentinel names the replica as master and the replica says it is one.</summary>
    public async Task KillMasterAndWaitForFailoverAsync()
    {
        await Master.KillAsync();
        await WaitForFailoverAsync();
    }

    /// <summary>Waits until every Sentinel names the replica as master and the replica reports role:master.</summary>
    public async Task WaitForFailoverAsync()
    {
        foreach (var sentinel in Sentinels)
        {
            await Eventually.WaitUntilAsync(async () =>
            {
                var (_, output, _) = await ExternalProcess.RunAsync("redis-cli", ["-p", Port(sentinel), "sentinel", "get-master-addr-by-name", ServiceName]);
                return output.Split('\n', StringSplitOptions.TrimEntries).Contains(Port(Replica));
            }, TimeSpan.FromSeconds(60), $"Sentinel on port {sentinel.Port} to name the replica as master");
        }
        await WaitForInfoAsync(Replica, "role:master", "the replica to be promoted");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sentinel in Sentinels)
        {
            await sentinel.DisposeAsync();
        }
        await Replica.DisposeAsync();
        await Master.DisposeAsync();
        _directory.Dispose();
    }

    private static string Port(RedisServer server) => server.Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>SENTINEL MASTER &lt;name&gt; as field/value pairs (redis-cli prints one per line, alternating).</summary>
    private static async Task<Dictionary<string, string>> SentinelMasterStateAsync(RedisServer sentinel)
    {
        var (_, output, _) = await ExternalProcess.RunAsync("redis-cli", ["-p", Port(sentinel), "sentinel", "master", ServiceName]);
        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        var state = new Dictionary<string, string>();
        for (var i = 0; i + 1 < lines.Length; i += 2)
        {
            state[lines[i]] = lines[i + 1];
        }
        return state;
    }

    private static Task WaitForInfoAsync(RedisServer server, string line, string because) =>
        Eventually.WaitUntilAsync(async () =>
        {
            var (_, info, _) = await ExternalProcess.RunAsync("redis-cli", ["-p", Port(server), "info", "replication"]);
            return info.Split('\n', StringSplitOptions.TrimEntries).Contains(line);
        }, TimeSpan.FromSeconds(60), because);
}
