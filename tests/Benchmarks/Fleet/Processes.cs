using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SecretsBroker.Benchmarks.Fleet;

/// <summary>A broker replica in a child process (<see cref="BrokerNode"/>): its address, and its memory on request.</summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly SemaphoreSlim _commands = new(1, 1);

    private BrokerProcess(Process process, StreamWriter log, Uri address)
    {
        _process = process;
        _log = log;
        Address = address;
    }

    public Uri Address { get; }

    public int Pid => _process.Id;

    public static async Task<BrokerProcess> StartAsync(string name, Uri vault, string redis, TimeSpan pollInterval, int maxStreams, string logDirectory)
    {
        var info = SelfStart("node", "--vault", vault.ToString(), "--redis", redis,
            "--poll", pollInterval.ToString("c", CultureInfo.InvariantCulture), "--max-streams", maxStreams.ToString(CultureInfo.InvariantCulture));
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start a broker process");
        var log = new StreamWriter(Path.Combine(logDirectory, name + ".log")) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (log)
                {
                    log.WriteLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("ready ", StringComparison.Ordinal))
            {
                return new BrokerProcess(process, log, new Uri(line["ready ".Length..]));
            }
        }
        throw new InvalidOperationException($"broker {name} exited before it listened (see {logDirectory}/{name}.log)");
    }

    /// <summary>Managed heap after a full GC and VmRSS of the replica, in bytes.</summary>
    public async Task<(long Heap, long Rss)> MemoryAsync()
    {
        var parts = (await CommandAsync("memory")).Split(' ');
        return (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    /// <summary>WatchSecrets calls the replica serves now.</summary>
    public async Task<int> WatchesAsync() => int.Parse((await CommandAsync("watches")).Split(' ')[1], CultureInfo.InvariantCulture);

    /// <summary>User + system CPU seconds of the replica so far (/proc/PID/stat).</summary>
    public double CpuSeconds() => Machine.CpuSeconds(_process.Id);

    private async Task<string> CommandAsync(string command)
    {
        await _commands.WaitAsync();
        try
        {
            await _process.StandardInput.WriteLineAsync(command);
            await _process.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            return await _process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the broker process exited");
        }
        finally
        {
            _commands.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _process.StandardInput.WriteLineAsync("exit");
            await _process.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
        await _log.DisposeAsync();
    }

    /// <summary>This benchmark program again, with <paramref name="args"/> (apphost or <c>dotnet SecretsBroker.Benchmarks.Fleet.dll</c>).</summary>
    private static ProcessStartInfo SelfStart(params string[] args)
    {
        var path = Environment.ProcessPath!;
        var info = Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? new ProcessStartInfo(path) { ArgumentList = { typeof(BrokerProcess).Assembly.Location } }
            : new ProcessStartInfo(path);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.UseShellExecute = false;
        return info;
    }
}

/// <summary>A redis-server of the benchmark's own on 127.0.0.1 (no persistence), or none when one was given.</summary>
public sealed class RedisProcess : IAsyncDisposable
{
    private readonly Process _process;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Configuration = "127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture);
    }

    public string Configuration { get; }

    public int Pid => _process.Id;

    public static async Task<RedisProcess> StartAsync()
    {
        // redis-server cannot listen on port 0: a port that was free a moment ago, and another when something took it meanwhile.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var port = FreePort();
            var info = new ProcessStartInfo("redis-server", ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            var process = Process.Start(info)!;
            var output = new List<string>();
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                output.Add(line);
                if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
                {
                    _ = process.StandardOutput.ReadToEndAsync();
                    return new RedisProcess(process, port);
                }
            }
            await process.WaitForExitAsync();
            if (!output.Any(l => l.Contains("Address already in use", StringComparison.Ordinal)))
            {
                throw new InvalidOperationException("redis-server did not start: " + string.Join('\n', output.TakeLast(5)));
            }
        }
        throw new InvalidOperationException("redis-server found no free port");
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}

public static class Machine
{
    public static double CpuSeconds(int pid)
    {
        var fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // utime and stime are fields 14 and 15 of stat; after "pid (comm)" they are the 12th and 13th; ticks of 100 Hz.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}

