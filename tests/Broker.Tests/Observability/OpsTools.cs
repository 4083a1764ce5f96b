using System.Diagnostics;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>
/// The operations tools the tests drive as real processes: Debian's prometheus and promtool (package
/// prometheus) and docker-compose (package docker-compose). .ci/run installs them; a missing one fails
/// the test with the package to install, it is never skipped.
/// </summary>
public static class OpsTools
{
    public static string Prometheus => Require("prometheus", "prometheus");

    public static string Promtool => Require("promtool", "prometheus");

    /// <summary>Debian's kubectl (package kubectl), or null: the Kubernetes manifest tests decide whether that may skip them.</summary>
    public static string? Kubectl => Find("kubectl");

    /// <summary>docker-compose (v1, Debian) or, failing that, the docker CLI with its compose plugin.</summary>
    public static (string FileName, string[] Prefix) Compose
    {
        get
        {
            if (Find("docker-compose") is { } compose)
            {
                return (compose, []);
            }
            if (Find("docker") is { } docker && Run(docker, ["compose", "version"]) == 0)
            {
                return (docker, ["compose"]);
            }
            Assert.Fail("neither docker-compose nor `docker compose` is installed: apt-get install docker-compose");
            return default;
        }
    }

    /// <summary>
    /// Starts a process that listens on ports picked with <see cref="FreePort.Candidate"/> and waits until
    /// <paramref name="ready"/> says it serves: for tools that cannot bind port 0 and report the port
    /// (Prometheus, whose own config names its address). A free port can be taken by another test between the
    /// pick and the bind; when the process exits because an address was in use, it is started again
    /// on fresh ports (at most three times). Any other early exit fails the test with its output.
    /// </summary>
    public static async Task<(ExternalProcess Process, int[] Ports)> StartOnFreePortsAsync(
        int portCount, Func<int[], ExternalProcess> start, Func<ExternalProcess, int[], Task<bool>> ready, string what)
    {
        for (var attempt = 1; ; attempt++)
        {
            var ports = Enumerable.Range(0, portCount).Select(_ => FreePort.Candidate()).ToArray();
            var process = start(ports);
            var started = false;
            await Eventually.WaitUntilAsync(async () => process.HasExited || (started = await ready(process, ports)),
                TimeSpan.FromSeconds(60), $"{what} to start");
            if (started)
            {
                return (process, ports);
            }
            var output = string.Join('\n', process.Output);
            await process.DisposeAsync();
            var portTaken = output.Contains("address already in use", StringComparison.OrdinalIgnoreCase)
                || output.Contains("Failed to bind", StringComparison.OrdinalIgnoreCase);
            Assert.True(portTaken && attempt < 3, $"{what} exited before it was ready; output:\n{output}");
        }
    }

    public static string DeployPath(params string[] parts) => Path.Combine([RepositoryLayout.Root, "deploy", .. parts]);

    /// <summary>Runs a tool with <paramref name="input"/> on its standard input; returns its exit code and combined output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string fileName, IEnumerable<string> arguments, string? input = null, string? workingDirectory = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepositoryLayout.Root,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
        }
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{fileName} did not finish within 2 minutes");
        }
        return (process.ExitCode, (await stdout) + (await stderr));
    }

    private static string Require(string name, string package) =>
        Find(name) ?? throw new InvalidOperationException($"{name} is not installed: apt-get install {package} (see docs/operations.md, 'Tests')");

    private static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':')
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);

    private static int Run(string fileName, string[] arguments)
    {
        var startInfo = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        using var process = Process.Start(startInfo)!;
        process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode;
    }
}
