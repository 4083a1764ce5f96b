using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace SecretsBroker.Cli;

/// <summary>
/// <c>brokerctl render --template T --out F [--watch] [--exec-after CMD] [--signal SIG --pid P]</c>: what Vault
/// Agent's templates do. Renders <see cref="SecretTemplate"/> and writes F atomically with mode 0600; a template
/// error or a secret that cannot be read writes nothing and exits with its code. With <c>--watch</c> it keeps
/// running: a new version of a referenced secret (WatchSecrets) or a rotated lease renders again, and when the
/// content changed F is replaced and the command run / the signal sent. A failed re-render keeps the previous
/// file and is reported; SIGINT/SIGTERM end the watch (exit 0) and revoke the leases it kept alive.
/// </summary>
internal static class RenderCommand
{
    internal sealed record Settings(string Template, string Output, bool Watch, string? ExecAfter, int? Signal, int? Pid);

    public static Command Build(GlobalOptions globals)
    {
        var template = new Option<string>("--template", "-t") { Description = "Handlebars template file, e.g. password={{secret \"kv/app/db\" \"password\"}}", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "File to write (mode 0600, replaced atomically)", Required = true };
        var watch = new Option<bool>("--watch") { Description = "Keep running: render again when a referenced secret changes or a lease rotates" };
        var execAfter = new Option<string>("--exec-after") { Description = "Shell command run (sh -c) after each render that changed the file" };
        var signal = new Option<string>("--signal") { Description = "Signal (HUP, USR1, TERM ...) sent to --pid after each render that changed the file" };
        var pid = new Option<int?>("--pid") { Description = "Process to signal (with --signal)" };
        var render = new Command("render", "Render a template with secrets into a file (0600, atomic); --watch re-renders on changes") { template, output, watch, execAfter, signal, pid };
        render.SetAction(parse =>
        {
            int? signalNumber = null;
            if (parse.GetValue(signal) is { } name && (signalNumber = ChildProcess.SignalNumber(name)) is null)
            {
                return Task.FromResult(CliOutput.Usage($"--signal '{name}' is not one of TERM, INT, HUP, QUIT, USR1, USR2, KILL"));
            }
            if ((signalNumber is null) != (parse.GetValue(pid) is null))
            {
                return Task.FromResult(CliOutput.Usage("--signal and --pid go together"));
            }
            if (!File.Exists(parse.GetValue(template)))
            {
                return Task.FromResult(CliOutput.Usage($"template file '{parse.GetValue(template)}' does not exist"));
            }
            if (Path.GetDirectoryName(Path.GetFullPath(parse.GetValue(output)!)) is not { } directory || !Directory.Exists(directory))
            {
                return Task.FromResult(CliOutput.Usage($"the directory of --out '{parse.GetValue(output)}' does not exist"));
            }
            var settings = new Settings(parse.GetValue(template)!, parse.GetValue(output)!, parse.GetValue(watch), parse.GetValue(execAfter), signalNumber, parse.GetValue(pid));
            return BrokerCtl.RunAsync(parse, globals, call => RunAsync(call, settings));
        });
        return render;
    }

    private static async Task<int> RunAsync(CallContext call, Settings settings)
    {
        using var stop = new CancellationTokenSource();
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop(stop));
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop(stop));
        var source = new SecretSource(call, keepLeases: settings.Watch);
        await using var sourceScope = source.ConfigureAwait(false);
        try
        {
            var template = SecretTemplate.Compile(await File.ReadAllTextAsync(settings.Template, stop.Token).ConfigureAwait(false), source);
            var exitCode = await RenderOnceAsync(template, settings, stop.Token).ConfigureAwait(false);
            if (!settings.Watch || exitCode != ExitCodes.Ok)
            {
                return exitCode;
            }
            var feed = new ChangeFeed(call, source, watchSecrets: true);
            await using var feedScope = feed.ConfigureAwait(false);
            feed.Follow();
            while (true)
            {
                await feed.WaitAsync(stop.Token).ConfigureAwait(false);
                try
                {
                    await RenderOnceAsync(template, settings, stop.Token).ConfigureAwait(false);
                }
                catch (MaterializeException ex)
                {
                    // The previous file stays: a broken re-render must not take a working config away.
                    CliOutput.WriteError(ex.Code, $"{ex.Message} (the previous {settings.Output} is kept)");
                }
                catch (Grpc.Core.RpcException ex) when (ex.StatusCode != Grpc.Core.StatusCode.Cancelled)
                {
                    CliOutput.WriteError(CliOutput.StatusName(ex.StatusCode), $"{ex.Status.Detail} (the previous {settings.Output} is kept)");
                }
                feed.Follow();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (MaterializeException ex)
        {
            CliOutput.WriteError(ex.Code, ex.Message);
            return ex.ExitCode;
        }
    }

    private static async Task<int> RenderOnceAsync(SecretTemplate template, Settings settings, CancellationToken cancellationToken)
    {
        var content = await template.RenderAsync(cancellationToken).ConfigureAwait(false);
        var changed = SecretFiles.WriteAtomically(settings.Output, content);
        Report(settings.Output, changed);
        if (!changed)
        {
            return ExitCodes.Ok;
        }
        if (settings.Signal is { } signal && !ChildProcess.SignalProcess(settings.Pid!.Value, signal))
        {
            CliOutput.WriteError("SIGNAL_FAILED", $"could not signal process {settings.Pid}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        if (settings.ExecAfter is { } command)
        {
            var (child, startFailure) = ChildProcess.Start(["/bin/sh", "-c", command], new Dictionary<string, string>());
            if (child is null)
            {
                return startFailure;
            }
            using (child)
            {
                await child.Process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                if (child.Process.ExitCode != 0)
                {
                    CliOutput.WriteError("EXEC_AFTER_FAILED", $"--exec-after exited {child.Process.ExitCode}");
                    return settings.Watch ? ExitCodes.Ok : child.Process.ExitCode;
                }
            }
        }
        return ExitCodes.Ok;
    }

    /// <summary>One JSON line per render on stdout, for supervisors and tests: {"rendered":"F","changed":true}.</summary>
    private static void Report(string file, bool changed)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("rendered", Path.GetFullPath(file));
            writer.WriteBoolean("changed", changed);
            writer.WriteEndObject();
        }
        Console.Out.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        Console.Out.Flush();
    }

    private static Action<PosixSignalContext> Stop(CancellationTokenSource stop) => context =>
    {
        context.Cancel = true;
        stop.Cancel();
    };
}
