using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real Redis Cluster of three masters (no replicas) on loopback ports, created with <c>redis-cli --cluster create</c>
/// as an operator would. Each node keeps its cluster state in a file of its own, so a killed master restarted on its port
/// rejoins with its slots (empty, as it kept no data).
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    private readonly TestDirectory _directory;

    private RedisCluster(TestDirectory directory, IReadOnlyList<RedisServer> masters)
    {
        _directory = directory;
        Masters = masters;
    }

    public IReadOnlyList<RedisServer> Masters { get; }

    /// <summary>The value of <c>Broker:Redis:Configuration</c>: every master as a seed.</summary>
    public string ConnectionString => string.Join(',', Masters.Select(m => m.ConnectionString));

    public static async Task<RedisCluster> StartAsync()
    {
        var directory = new TestDirectory();
        var masters = new List<RedisServer>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                // The cluster bus gets a port of its own (default: data port + 10000, which may be taken or out of range).
                masters.Add(await RedisServer.StartAsync(extraArguments:
                [
                    "--cluster-enabled", "yes", "--cluster-config-file", Path.Combine(directory.Path, $"nodes-{i}.conf"),
                    "--cluster-port", FreePort.Candidate().ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "--cluster-node-timeout", "2000",
                ]));
            }
            var (exitCode, output, errors) = await ExternalProcess.RunAsync("redis-cli",
                ["--cluster", "create", .. masters.Select(m => m.ConnectionString), "--cluster-replicas", "0", "--cluster-yes"]);
            Assert.True(exitCode == 0, $"redis-cli --cluster create failed ({exitCode}):\n{output}\n{errors}");
            var cluster = new RedisCluster(directory, masters);
            await cluster.WaitUntilHealthyAsync();
            return cluster;
        }
        catch
        {
            foreach (var master in masters)
            {
                await master.DisposeAsync();
            }
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Waits until every master reports <c>cluster_state:ok</c> (all slots served).</summary>
    public Task WaitUntilHealthyAsync() =>
        Eventually.WaitUntilAsync(async () =>
        {
            foreach (var master in Masters)
            {
                var (_, info, _) = await ExternalProcess.RunAsync("redis-cli", ["-p", master.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "cluster", "info"]);
                if (!info.Contains("cluster_state:ok", StringComparison.Ordinal))
                {
                    return false;
                }
            }
            return true;
        }, TimeSpan.FromSeconds(60), "every master of the cluster to report cluster_state:ok");

    /// <summary>The cluster slot of a key, as Redis computes it (CLUSTER KEYSLOT).</summary>
    public async Task<int> KeySlotAsync(string key)
    {
        var (_, output, _) = await ExternalProcess.RunAsync("redis-cli", ["-p", Masters[0].Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "cluster", "keyslot", key]);
        return int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Every key on every master.</summary>
    public async Task<IReadOnlyList<string>> KeysAsync()
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",abortConnect=false");
        var keys = new List<string>();
        foreach (var endpoint in connection.GetEndPoints())
        {
            await foreach (var key in connection.GetServer(endpoint).KeysAsync(pattern: "*"))
            {
                keys.Add(key.ToString());
            }
        }
        return keys;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var master in Masters)
        {
            await master.DisposeAsync();
        }
        _directory.Dispose();
    }
}
