using SecretsBroker.Broker.Tests.Infrastructure;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>
/// A real redis-server on a free loopback port, without persistence, started per test. It can be
/// killed (SIGKILL, as a crash) and started again on the same port; <see cref="Admin"/> reads what
/// the broker stored.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private ExternalProcess? _process;
    private ConnectionMultiplexer? _admin;

    private RedisServer(int port)
    {
        Port = port;
    }

    public int Port { get; }

    /// <summary>The value of <c>Broker:Cache:Redis</c> for a broker that uses this server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var server = new RedisServer(FreePort.Next());
        await server.RestartAsync();
        return server;
    }

    /// <summary>Starts redis-server (again) on <see cref="Port"/>, empty, and waits until it accepts connections.</summary>
    public async Task RestartAsync()
    {
        _process = ExternalProcess.Start("redis-server", ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no"]);
        await FreePort.WaitUntilListeningAsync(Port);
    }

    /// <summary>Kills redis-server as a crash would; its data is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    /// <summary>A separate admin connection for the test (scans, tampering), opened on first use.</summary>
    public async Task<IServer> AdminServerAsync() => (await AdminAsync()).GetServer("127.0.0.1", Port);

    public async Task<IDatabase> DatabaseAsync() => (await AdminAsync()).GetDatabase();

    /// <summary>Every key with every stored byte string under it (string values and hash fields and values).</summary>
    public async Task<IReadOnlyList<(string Key, IReadOnlyList<byte[]> Contents)>> DumpAsync()
    {
        var server = await AdminServerAsync();
        var database = await DatabaseAsync();
        var dump = new List<(string, IReadOnlyList<byte[]>)>();
        await foreach (var key in server.KeysAsync(pattern: "*"))
        {
            var contents = new List<byte[]>();
            var type = await database.KeyTypeAsync(key);
            switch (type)
            {
                case RedisType.String:
                    contents.Add((byte[])(await database.StringGetAsync(key))!);
                    break;
                case RedisType.Hash:
                    foreach (var entry in await database.HashGetAllAsync(key))
                    {
                        contents.Add((byte[])entry.Name!);
                        contents.Add((byte[])entry.Value!);
                    }
                    break;
                default:
                    Assert.Fail($"unexpected Redis type {type} at key {key}");
                    break;
            }
            dump.Add((key.ToString(), contents));
        }
        return dump;
    }

    public async ValueTask DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }
        await KillAsync();
    }

    private async Task<ConnectionMultiplexer> AdminAsync() =>
        _admin ??= await ConnectionMultiplexer.ConnectAsync($"{ConnectionString},allowAdmin=true,abortConnect=false");
}
