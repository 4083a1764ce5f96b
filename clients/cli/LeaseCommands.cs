using System.CommandLine;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>issue, revoke and lease (credentials kept alive while a command runs).</summary>
internal static class LeaseCommands
{
    public const string DefaultEnvironmentPrefix = "SECRETSBROKER_CRED_";

    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        yield return Issue(globals);
        yield return Revoke(globals);
        yield return Lease(globals);
    }

    private static Command Issue(GlobalOptions globals)
    {
        var path = new Argument<string>("path") { Description = "Role path on a vault-dynamic mount, for example db/readonly" };
        var issue = new Command("issue", "Issue dynamic credentials and print the lease (nothing keeps it alive: see 'lease')") { path };
        issue.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var lease = await call.Client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = parse.GetValue(path)! }, deadline: call.Deadline())
                .ResponseAsync.ConfigureAwait(false);
            call.Output.Print(lease);
            return ExitCodes.Ok;
        }));
        return issue;
    }

    private static Command Revoke(GlobalOptions globals)
    {
        var leaseId = new Argument<string>("lease-id")
        {
            Description = "The lease id, or - (the default) to read it from stdin: a lease id allows revoking, so keep it off argv",
            DefaultValueFactory = _ => "-",
        };
        var revoke = new Command("revoke", "Revoke a lease now") { leaseId };
        revoke.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var id = parse.GetValue(leaseId) is "-" or null ? (await Console.In.ReadToEndAsync().ConfigureAwait(false)).Trim() : parse.GetValue(leaseId)!;
            if (id.Length == 0)
            {
                return CliOutput.Usage("no lease id: pass it on stdin or as the argument");
            }
            await call.Client.Raw.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = id }, deadline: call.Deadline()).ResponseAsync.ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return revoke;
    }

    private static Command Lease(GlobalOptions globals)
    {
        var path = new Argument<string>("path") { Description = "Role path on a vault-dynamic mount, for example db/readonly" };
        var command = new Argument<string[]>("command") { Description = "The command to run (after --) with the credentials in its environment", Arity = ArgumentArity.OneOrMore };
        var prefix = new Option<string>("--env-prefix")
        {
            Description = $"Prefix of the credential variables: field 'username' becomes {DefaultEnvironmentPrefix}USERNAME",
            DefaultValueFactory = _ => DefaultEnvironmentPrefix,
        };
        var signal = new Option<string>("--signal") { Description = "Signal sent to the command when the lease is lost: TERM, INT, HUP, QUIT, USR1, USR2 or KILL", DefaultValueFactory = _ => "TERM" };
        var killAfter = new Option<double>("--kill-after") { Description = "Seconds to wait after that signal before SIGKILL", DefaultValueFactory = _ => 10 };
        var lease = new Command("lease", "Issue credentials, run a command with them in its environment, keep the lease alive while it runs, revoke it when it exits")
        {
            path, command, prefix, signal, killAfter,
        };
        lease.Aliases.Add("keepalive");
        lease.SetAction(parse =>
        {
            if (ChildProcess.SignalNumber(parse.GetValue(signal)!) is not { } signalNumber)
            {
                return Task.FromResult(CliOutput.Usage($"--signal '{parse.GetValue(signal)}' is not one of TERM, INT, HUP, QUIT, USR1, USR2, KILL"));
            }
            if (parse.GetValue(killAfter) < 0)
            {
                return Task.FromResult(CliOutput.Usage("--kill-after must not be negative"));
            }
            if (!LeasedCommand.IsValidPrefix(parse.GetValue(prefix)!))
            {
                return Task.FromResult(CliOutput.Usage("--env-prefix may hold only letters, digits and _"));
            }
            var settings = new LeasedCommand.Settings(parse.GetValue(path)!, parse.GetValue(command)!, parse.GetValue(prefix)!, signalNumber,
                TimeSpan.FromSeconds(parse.GetValue(killAfter)));
            return BrokerCtl.RunAsync(parse, globals, call => LeasedCommand.RunAsync(call, settings));
        });
        return lease;
    }
}
