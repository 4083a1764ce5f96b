using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real redis-server on a loopback port, without persistence, started per test. It can be
/// killed (SIGKILL, as a crash) and started again on the same port; <see cref="Admin"/> reads what
/// the broker stored.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private ExternalProcess? _process;
    private ConnectionMultiplexer? _admin;

    private readonly string? _dataDirectory;

    private readonly IReadOnlyList<string>? _tlsArguments;

    private readonly IReadOnlyList<string> _extraArguments;

    /// <summary>The sentinel's own configuration file (which it rewrites), or null for a data server.</summary>
    private readonly string? _sentinelConfigFile;

    private RedisServer(int port, string? dataDirectory, IReadOnlyList<string>? tlsArguments, IReadOnlyList<string>? extraArguments, string? sentinelConfigFile = null)
    {
        Port = port;
        _dataDirectory = dataDirectory;
        _tlsArguments = tlsArguments;
        _extraArguments = extraArguments ?? [];
        _sentinelConfigFile = sentinelConfigFile;
    }

    public int Port { get; }

    /// <summary>The value of <c>Broker:Redis:Configuration</c> for a broker that uses this server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>
    /// Starts a server. With <paramref name="durableIn"/> it keeps an append-only file there, fsynced on
    /// every write, so its data survives <see cref="KillAsync"/> and <see cref="RestartAsync"/>.
    /// redis-server cannot listen on port 0 and report its port, so it gets a candidate port and, when
    /// another process bound that port first, is started again on a new one.
    /// </summary>
    /// <param name="tlsArguments">TLS settings (certificate files ...): the server then listens with TLS only, on <see cref="Port"/>.</param>
    /// <param name="extraArguments">More redis-server settings (cluster mode ...).</param>
    public static async Task<RedisServer> StartAsync(string? durableIn = null, IReadOnlyList<string>? tlsArguments = null, IReadOnlyList<string>? extraArguments = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(FreePort.Candidate(), durableIn, tlsArguments, extraArguments);
            var output = await server.TryStartAsync();
            if (output is null)
            {
                return server;
            }
            Assert.True(attempt < 5, $"redis-server found its port taken {attempt} times; last output:\n{output}");
        }
    }

    /// <summary>
    /// Starts <c>redis-server &lt;configFile&gt; --sentinel</c> (what the redis-sentinel package's binary runs): Sentinel
    /// insists on a writable configuration file, which holds its <c>sentinel monitor</c> lines and which it rewrites.
    /// The port is chosen and retried as for a data server.
    /// </summary>
    public static async Task<RedisServer> StartSentinelAsync(string configFile)
    {
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(FreePort.Candidate(), null, null, null, configFile);
            var output = await server.TryStartAsync();
            if (output is null)
            {
                return server;
            }
            Assert.True(attempt < 5, $"redis-sentinel found its port taken {attempt} times; last output:\n{output}");
        }
    }

    /// <summary>Starts redis-server again on <see cref="Port"/> (clients reconnect to the same address) and waits until it is ready; empty unless durable.</summary>
    public async Task RestartAsync()
    {
        var output = await TryStartAsync();
        Assert.True(output is null, $"redis-server could not listen on its port {Port} again (another process took it meanwhile); output:\n{output}");
    }

    /// <summary>Null once this process says it accepts connections; its output when it could not bind its port (any other exit fails the test).</summary>
    private async Task<string?> TryStartAsync()
    {
        string[] persistence = _dataDirectory is null
            ? ["--save", "", "--appendonly", "no"]
            : ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", _dataDirectory];
        var port = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] listen = _tlsArguments is null ? ["--port", port] : ["--port", "0", "--tls-port", port, .. _tlsArguments];
        var process = _sentinelConfigFile is null
            ? ExternalProcess.Start("redis-server", [.. listen, "--bind", "127.0.0.1", .. persistence, .. _extraArguments])
            : ExternalProcess.Start("redis-server", [_sentinelConfigFile, "--sentinel", .. listen, "--bind", "127.0.0.1"]);
        // Its own "Ready" line, not a TCP connect: another server on the same port would accept connections too. A sentinel
        // prints no such line; "+monitor master" comes after it bound its port (sentinel.c, sentinelIsRunning).
        var ready = _sentinelConfigFile is null ? "Ready to accept connections" : "+monitor master";
        await Eventually.WaitUntilAsync(() => process.HasExited || process.Output.Any(line => line.Contains(ready, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), $"redis-server to be ready on port {Port}");
        if (!process.HasExited)
        {
            _process = process;
            return null;
        }
        await process.WaitForExitAsync();
        var output = string.Join('\n', process.Output);
        await process.DisposeAsync();
        Assert.True(output.Contains("Address already in use", StringComparison.Ordinal), $"redis-server exited before it was ready; output:\n{output}");
        return output;
    }

    /// <summary>Kills redis-server as a crash would; its data is gone unless it is durable.</summary>
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

    /// <summary>Every key with every stored byte string under it (string values, hash fields and values, stream entry fields and values, set and sorted-set members).</summary>
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
                case RedisType.Stream:
                    foreach (var entry in await database.StreamRangeAsync(key))
                    {
                        contents.AddRange(entry.Values.SelectMany(v => new[] { (byte[])v.Name!, (byte[])v.Value! }));
                    }
                    break;
                case RedisType.SortedSet:
                    contents.AddRange((await database.SortedSetRangeByRankAsync(key)).Select(member => (byte[])member!));
                    break;
                case RedisType.Set:
                    contents.AddRange((await database.SetMembersAsync(key)).Select(member => (byte[])member!));
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
