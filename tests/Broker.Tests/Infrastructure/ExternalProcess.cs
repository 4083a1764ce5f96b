using System.Collections.Concurrent;
using System.Diagnostics;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real child process (redis-server, moto, the broker, brokerctl) with its output captured line by
/// line, killed with its whole tree at dispose.
/// </summary>
public sealed class ExternalProcess : IAsyncDisposable
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

    private void Record(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}
