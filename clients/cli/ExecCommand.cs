using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>
/// <c>brokerctl exec --secret NAME=PATH[#FIELD] --lease NAME=ROLE[#FIELD] --env NAME=PATH[#FIELD] -- CMD ARGS</c>:
/// runs CMD with each secret in a file of a private directory (0700, on tmpfs where there is one; files 0600)
/// whose path is in the environment variable NAME; <c>--env</c> puts a value itself in the environment, with a
/// warning. Leases are kept alive while CMD runs and revoked after. A rotated lease (or, with <c>--watch</c>, a
/// new secret version) rewrites the files in place atomically and sends <c>--signal</c> to CMD if given; a lease
/// the broker stops keeping alive stops CMD (exit 124). SIGTERM/SIGINT/SIGHUP/SIGQUIT are forwarded; the
/// directory is removed when CMD exits, however it exits; brokerctl exits with CMD's exit code.
/// </summary>
internal static class ExecCommand
{
    public const string DirectoryVariable = "SECRETSBROKER_SECRETS_DIR";

    public const string EnvironmentWarning =
        "secrets in environment variables are inherited by every process the command starts, readable in /proc/PID/environ " +
        "by the same user and root, and end up in crash dumps, core files and error reports; prefer --secret, which passes a file path";

    internal sealed record Reference(string Name, string Path, string? Field);

    internal sealed record Settings(Reference[] Files, Reference[] Leases, Reference[] Environment, string[] Command, string? Root, bool Watch, int? Signal, TimeSpan KillAfter);

    public static Command Build(GlobalOptions globals)
    {
        var secrets = new Option<string[]>("--secret", "-s") { Description = "NAME=PATH[#FIELD]: write the secret (or one field) to a file; $NAME holds its path (repeatable)" };
        var leases = new Option<string[]>("--lease", "-l") { Description = "NAME=ROLE[#FIELD]: issue credentials, keep them alive while the command runs, write them to a file; $NAME holds its path (repeatable)" };
        var environment = new Option<string[]>("--env", "-e") { Description = "NAME=PATH[#FIELD]: put the value itself in $NAME (leaks to child processes and crash dumps; repeatable)" };
        var root = new Option<string>("--dir") { Description = "Where to create the private directory (default: $XDG_RUNTIME_DIR, else /dev/shm, else the temporary folder)" };
        var watch = new Option<bool>("--watch") { Description = "Rewrite the secret files when a secret gets a new version" };
        var signal = new Option<string>("--signal") { Description = "Signal sent to the command after its files were rewritten (HUP, USR1 ...)" };
        var killAfter = new Option<double>("--kill-after") { Description = "Seconds between SIGTERM and SIGKILL when a lease is lost", DefaultValueFactory = _ => 10 };
        var command = new Argument<string[]>("command") { Description = "The command to run (after --)", Arity = ArgumentArity.OneOrMore };
        var exec = new Command("exec", "Run a command with secrets as files in a private directory (paths in $NAME); leases kept alive while it runs")
        {
            secrets, leases, environment, root, watch, signal, killAfter, command,
        };
        exec.SetAction(parse =>
        {
            var files = Parse(parse.GetValue(secrets), "--secret", out var error);
            var leased = error is null ? Parse(parse.GetValue(leases), "--lease", out error) : [];
            var variables = error is null ? Parse(parse.GetValue(environment), "--env", out error) : [];
            int? signalNumber = null;
            if (error is null && parse.GetValue(signal) is { } name && (signalNumber = ChildProcess.SignalNumber(name)) is null)
            {
                error = $"--signal '{name}' is not one of TERM, INT, HUP, QUIT, USR1, USR2, KILL";
            }
            var names = files.Concat(leased).Concat(variables).Select(r => r.Name).ToArray();
            if (error is null && names.Length == 0)
            {
                error = "name at least one --secret, --lease or --env";
            }
            if (error is null && names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
            {
                error = $"the name {duplicate.Key} is given twice";
            }
            if (error is null && names.Contains(DirectoryVariable, StringComparer.Ordinal))
            {
                error = $"{DirectoryVariable} is set by brokerctl";
            }
            if (error is null && parse.GetValue(root) is { } directory && !Directory.Exists(directory))
            {
                error = $"--dir '{directory}' does not exist";
            }
            if (error is null && parse.GetValue(killAfter) < 0)
            {
                error = "--kill-after must not be negative";
            }
            if (error is not null)
            {
                return Task.FromResult(CliOutput.Usage(error));
            }
            var settings = new Settings(files, leased, variables, parse.GetValue(command)!, parse.GetValue(root), parse.GetValue(watch), signalNumber,
                TimeSpan.FromSeconds(parse.GetValue(killAfter)));
            return BrokerCtl.RunAsync(parse, globals, call => RunAsync(call, settings));
        });
        return exec;
    }

    /// <summary>NAME=PATH[#FIELD] items; NAME must be a portable environment variable name.</summary>
    internal static Reference[] Parse(string[]? items, string option, out string? error)
    {
        error = null;
        var references = new List<Reference>();
        foreach (var item in items ?? [])
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            var name = equals > 0 ? item[..equals] : "";
            var target = equals > 0 ? item[(equals + 1)..] : "";
            var hash = target.IndexOf('#', StringComparison.Ordinal);
            var (path, field) = hash < 0 ? (target, null) : (target[..hash], target[(hash + 1)..]);
            if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] == '_') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')
                || path.Length == 0 || field is { Length: 0 })
            {
                error = $"{option} '{item}': expected NAME=PATH or NAME=PATH#FIELD, NAME made of letters, digits and _ (not starting with a digit)";
                return [];
            }
            references.Add(new Reference(name, path, field));
        }
        return [.. references];
    }

    private static async Task<int> RunAsync(CallContext call, Settings settings)
    {
        var source = new SecretSource(call, keepLeases: true);
        await using var sourceScope = source.ConfigureAwait(false);
        Dictionary<string, byte[]> contents;
        try
        {
            contents = await SecretTemplate.RenderAsync(source, () => Render(source, settings), CancellationToken.None).ConfigureAwait(false);
        }
        catch (MaterializeException ex)
        {
            CliOutput.WriteError(ex.Code, ex.Message);
            return ex.ExitCode;
        }
        var directory = SecretFiles.CreatePrivateDirectory(settings.Root);
        try
        {
            var environment = new Dictionary<string, string>(StringComparer.Ordinal) { [DirectoryVariable] = directory };
            foreach (var reference in settings.Files.Concat(settings.Leases))
            {
                environment[reference.Name] = Path.Combine(directory, reference.Name);
            }
            Write(directory, contents, settings);
            foreach (var reference in settings.Environment)
            {
                environment[reference.Name] = Encoding.UTF8.GetString(contents[reference.Name]);
            }
            if (settings.Environment.Length > 0)
            {
                CliOutput.WriteWarning("SECRET_IN_ENVIRONMENT", $"--env {string.Join(", ", settings.Environment.Select(r => r.Name))}: {EnvironmentWarning}");
            }
            var (child, startFailure) = ChildProcess.Start(settings.Command, environment);
            if (child is null)
            {
                return startFailure;
            }
            using (child)
            using (LeasedCommand.Forward(PosixSignal.SIGTERM, child, 15))
            using (LeasedCommand.Forward(PosixSignal.SIGINT, child, 2))
            using (LeasedCommand.Forward(PosixSignal.SIGHUP, child, 1))
            using (LeasedCommand.Forward(PosixSignal.SIGQUIT, child, 3))
            {
                return await SuperviseAsync(call, source, child, directory, settings).ConfigureAwait(false);
            }
        }
        finally
        {
            SecretFiles.RemoveDirectory(directory);
        }
    }

    /// <summary>Waits for the command, rewriting its files on changes; returns its exit code, or 124 when a lease was lost.</summary>
    private static async Task<int> SuperviseAsync(CallContext call, SecretSource source, ChildProcess child, string directory, Settings settings)
    {
        var exited = child.Process.WaitForExitAsync();
        var feed = new ChangeFeed(call, source, settings.Watch);
        await using var feedScope = feed.ConfigureAwait(false);
        feed.Follow();
        using var stop = new CancellationTokenSource();
        while (true)
        {
            var change = feed.WaitAsync(stop.Token);
            if (await Task.WhenAny(exited, change).ConfigureAwait(false) == exited)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await change.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                return child.Process.ExitCode;
            }
            try
            {
                await change.ConfigureAwait(false);
                var contents = await SecretTemplate.RenderAsync(source, () => Render(source, settings), CancellationToken.None).ConfigureAwait(false);
                if (Write(directory, contents, settings) && settings.Signal is { } signal)
                {
                    child.Signal(signal);
                }
                feed.Follow();
            }
            catch (MaterializeException ex) when (ex.ExitCode != ExitCodes.LeaseLost)
            {
                // The files keep their previous content; the command goes on with it.
                CliOutput.WriteError(ex.Code, $"{ex.Message} (the files keep their previous content)");
                feed.Follow();
            }
            catch (MaterializeException ex)
            {
                CliOutput.WriteError(ex.Code, $"{ex.Message}; the command was stopped");
                await child.StopAsync(15, settings.KillAfter).ConfigureAwait(false);
                return ex.ExitCode;
            }
        }
    }

    /// <summary>Every file's and variable's content, keyed by NAME; a secret not fetched yet is an empty placeholder.</summary>
    private static Dictionary<string, byte[]> Render(SecretSource source, Settings settings)
    {
        var contents = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var reference in settings.Files.Concat(settings.Environment))
        {
            contents[reference.Name] = source.Secret(reference.Path) is { } secret ? Content(reference, secret.Data, secret.BinaryData.ToByteArray(), "secret") : [];
        }
        foreach (var reference in settings.Leases)
        {
            contents[reference.Name] = source.Lease(reference.Path) is { } lease ? Content(reference, lease.Credentials, [], "lease") : [];
        }
        return contents;
    }

    /// <summary>A field: its value; a whole key/value secret: its fields as a JSON object; a binary secret: its bytes.</summary>
    private static byte[] Content(Reference reference, Google.Protobuf.Collections.MapField<string, string> fields, byte[] binary, string kind)
    {
        if (reference.Field is { } field)
        {
            if (fields.TryGetValue(field, out var value))
            {
                return Encoding.UTF8.GetBytes(value);
            }
            var known = fields.Count == 0 ? "it holds binary data only (leave out #FIELD)" : "its fields: " + string.Join(", ", fields.Keys.Order(StringComparer.Ordinal));
            throw new MaterializeException(ExitCodes.NotFound, "NOT_FOUND", $"{kind} '{reference.Path}' has no field '{field}'; {known}");
        }
        return fields.Count == 0 && binary.Length > 0
            ? binary
            : Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string>(fields, StringComparer.Ordinal), CliJsonContext.Relaxed.DictionaryStringString));
    }

    /// <summary>Writes the files (not the --env values); true when any content changed.</summary>
    private static bool Write(string directory, Dictionary<string, byte[]> contents, Settings settings)
    {
        var changed = false;
        foreach (var reference in settings.Files.Concat(settings.Leases))
        {
            changed |= SecretFiles.WriteAtomically(Path.Combine(directory, reference.Name), contents[reference.Name]);
        }
        return changed;
    }
}
