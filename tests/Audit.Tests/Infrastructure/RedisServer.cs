using System.Globalization;
using SecretsBroker.Broker.Tests.Infrastructure;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.Infrastructure;

/// <summary>
/// A real redis-server on a free loopback port, without persistence. Minimal on purpose: the cache
/// branch's fixture (tests/Broker.Tests/Caching/RedisServer.cs) is not on main yet; once it is, link it
/// instead and keep only the stream helpers here.
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
        _process = ExternalProcess.Start("redis-server", ["--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no"]);
        await FreePort.WaitUntilListeningAsync(Port);
    }

    /// <summary>Kills redis-server (SIGKILL); its data is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    public async Task<IDatabase> DatabaseAsync() => (await AdminAsync()).GetDatabase();

    public async Task<IServer> ServerAsync() => (await AdminAsync()).GetServer("127.0.0.1", Port);

    /// <summary>Every byte string Redis holds: keys, string values, hash fields and values, stream entry fields and values.</summary>
    public async Task<IReadOnlyList<byte[]>> DumpAsync()
    {
        var server = await ServerAsync();
        var database = await DatabaseAsync();
        var dump = new List<byte[]>();
        await foreach (var key in server.KeysAsync(pattern: "*"))
        {
            dump.Add((byte[])key!);
            switch (await database.KeyTypeAsync(key))
            {
                case RedisType.String:
                    dump.Add((byte[])(await database.StringGetAsync(key))!);
                    break;
                case RedisType.Hash:
                    foreach (var entry in await database.HashGetAllAsync(key))
                    {
                        dump.Add((byte[])entry.Name!);
                        dump.Add((byte[])entry.Value!);
                    }
                    break;
                case RedisType.Stream:
                    foreach (var entry in await database.StreamRangeAsync(key))
                    {
                        foreach (var value in entry.Values)
                        {
                            dump.Add((byte[])value.Name!);
                            dump.Add((byte[])value.Value!);
                        }
                    }
                    foreach (var group in await database.StreamGroupInfoAsync(key))
                    {
                        dump.Add(System.Text.Encoding.UTF8.GetBytes(group.Name));
                    }
                    break;
                case var other:
                    Assert.Fail($"unexpected Redis type {other} at key {key}");
                    break;
            }
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
