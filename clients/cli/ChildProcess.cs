using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SecretsBroker.Cli;

/// <summary>
/// The command <c>brokerctl lease</c> runs: started with brokerctl's stdio and environment plus the
/// credentials, signalled by number (.NET can only kill), and the shell's exit codes when it cannot start.
/// </summary>
internal sealed partial class ChildProcess(Process process) : IDisposable
{
    public Process Process => process;

    /// <summary>Starts the command, or returns the exit code of why it could not (127 not found, 126 not executable).</summary>
    public static (ChildProcess? Child, int ExitCode) Start(string[] command, IReadOnlyDictionary<string, string> environment)
    {
        var startInfo = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }
        try
        {
            return (new ChildProcess(Process.Start(startInfo)!), 0);
        }
        catch (Win32Exception ex)
        {
            // errno 2 (ENOENT): no such command; anything else (EACCES, ENOEXEC): it cannot be run.
            var notFound = ex.NativeErrorCode == 2;
            CliOutput.WriteError(notFound ? "COMMAND_NOT_FOUND" : "COMMAND_NOT_EXECUTABLE", $"cannot run '{command[0]}': {ex.Message}");
            return (null, notFound ? ExitCodes.CommandNotFound : ExitCodes.CommandNotExecutable);
        }
    }

    /// <summary>The signal number for a name (TERM, SIGTERM, 15 ...), as Linux and macOS number them.</summary>
    public static int? SignalNumber(string name)
    {
        name = name.ToUpperInvariant();
        name = name.StartsWith("SIG", StringComparison.Ordinal) ? name[3..] : name;
        return name switch
        {
            "HUP" or "1" => 1,
            "INT" or "2" => 2,
            "QUIT" or "3" => 3,
            "KILL" or "9" => 9,
            "USR1" => OperatingSystem.IsMacOS() ? 30 : 10,
            "USR2" => OperatingSystem.IsMacOS() ? 31 : 12,
            "TERM" or "15" => 15,
            _ => null,
        };
    }

    /// <summary>Sends a signal; on Windows, which has none, ends the process tree.</summary>
    public void Signal(int signal)
    {
        if (process.HasExited)
        {
            return;
        }
        if (OperatingSystem.IsWindows())
        {
            process.Kill(entireProcessTree: true);
            return;
        }
        _ = SendSignal(process.Id, signal);
    }

    /// <summary>Sends a signal to any process (render --signal --pid); false when there is no such process or it may not be signalled.</summary>
    public static bool SignalProcess(int pid, int signal) => !OperatingSystem.IsWindows() && SendSignal(pid, signal) == 0;

    /// <summary>Signals the child, then kills it if it is still running after <paramref name="grace"/>.</summary>
    public async Task StopAsync(int signal, TimeSpan grace)
    {
        Signal(signal);
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    public void Dispose() => process.Dispose();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
