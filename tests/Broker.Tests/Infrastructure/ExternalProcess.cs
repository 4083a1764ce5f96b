using System.Collections.Concurrent;
using System.Diagnostics;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real child process (redis-server, moto, the broker, brokerctl) with its output captured line by
/// line, killed with its whole tree at dispose.
/// </summary>
public sealed partial class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ExternalProcess(Process process)
    {
        _process = process;
    }

    public IReadOnlyCollection<string> Output => _output;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null)
    {
        var startInfo = CreateStartInfo(fileName, arguments, environment);
        startInfo.RedirectStandardInput = true;
        startInfo.WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory;
        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var external = new ExternalProcess(process);
        process.OutputDataReceived += (_, e) => external.Record(e.Data);
        process.ErrorDataReceived += (_, e) => external.Record(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return external;
    }

    /// <summary>Runs a process to completion and returns its exit code and output (stdout and stderr separately).</summary>
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(
        string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        var startInfo = CreateStartInfo(fileName, arguments, environment);
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} did not exit within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:0}s");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Waits for an output line matching <paramref name="predicate"/> and returns it.</summary>
    public async Task<string> WaitForOutputAsync(Func<string, bool> predicate, TimeSpan? timeout = null)
    {
        string? found = null;
        await Eventually.WaitUntilAsync(() =>
        {
            found = _output.FirstOrDefault(predicate);
            if (found is null && _process.HasExited)
            {
                // WaitForExit() returns once the redirected output has been read to the end.
                _process.WaitForExit();
                found = _output.FirstOrDefault(predicate);
            }
            if (found is null && _process.HasExited)
            {
                Assert.Fail($"process exited ({_process.ExitCode}) before the expected output; output:\n{string.Join('\n', _output)}");
            }
            return found is not null;
        }, timeout ?? TimeSpan.FromSeconds(60), "expected process output");
        return found!;
    }

    /// <summary>
    /// Waits for a line with <paramref name="marker"/> and an address on it, such as Kestrel's
    /// "Now listening on: http://127.0.0.1:40123", and returns that address: a child started on port 0
    /// reports the port it bound, so no port is picked for it in advance (and none can be taken meanwhile).
    /// </summary>
    public async Task<Uri> WaitForListeningAddressAsync(string marker = "Now listening on", TimeSpan? timeout = null) =>
        ListeningAddress(await WaitForOutputAsync(line => line.Contains(marker, StringComparison.Ordinal) && ListeningAddress(line) is not null, timeout))!;

    /// <summary>Every address announced so far on lines with <paramref name="marker"/>, in order.</summary>
    public IReadOnlyList<Uri> ListeningAddresses(string marker = "Now listening on") =>
        [.. _output.Where(line => line.Contains(marker, StringComparison.Ordinal)).Select(ListeningAddress).OfType<Uri>()];

    /// <summary>
    /// For a Kestrel child with two endpoints on port 0 (Kestrel's log names no endpoint): waits for both
    /// addresses and tells them apart by which one answers GET <paramref name="http1Path"/> over HTTP/1.1;
    /// the other is the HTTP/2-only (gRPC) one.
    /// </summary>
    public async Task<(Uri Http1, Uri Other)> WaitForTwoEndpointsAsync(string http1Path)
    {
        await Eventually.WaitUntilAsync(() =>
        {
            Assert.False(HasExited, "the process exited before listening; output:\n" + string.Join('\n', _output));
            return ListeningAddresses().Count >= 2;
        }, TimeSpan.FromSeconds(60), "the process to listen on its two endpoints");
        var addresses = ListeningAddresses();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var answering = new List<Uri>();
        foreach (var address in addresses)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(address, http1Path));
                if (response.IsSuccessStatusCode)
                {
                    answering.Add(address);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                // The HTTP/2-only endpoint does not speak HTTP/1.1.
            }
        }
        var http1 = Assert.Single(answering);
        return (http1, Assert.Single(addresses, a => a != http1));
    }

    /// <summary>Waits until the process exits by itself and returns its exit code; fails the test if it is still running after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cancellation = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"process still running after {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0}s; output:\n{string.Join('\n', _output)}");
        }
        return _process.ExitCode;
    }

    /// <summary>Kills the process tree (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }

    /// <summary>Output redirected; <paramref name="environment"/> entries with a null value are removed from the inherited environment.</summary>
    private static ProcessStartInfo CreateStartInfo(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                startInfo.Environment.Remove(key);
            }
            else
            {
                startInfo.Environment[key] = value;
            }
        }
        return startInfo;
    }

    private static Uri? ListeningAddress(string line) =>
        ListeningUrl().Match(line) is { Success: true } match ? new Uri(match.Value) : null;

    [System.Text.RegularExpressions.GeneratedRegex(@"https?://[0-9.]+:[0-9]+")]
    private static partial System.Text.RegularExpressions.Regex ListeningUrl();

    private void Record(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}
