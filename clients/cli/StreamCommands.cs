using System.CommandLine;
using System.Runtime.InteropServices;
using Grpc.Core;
using Grpc.Health.V1;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>watch (secret events as JSON lines) and health (grpc.health.v1).</summary>
internal static class StreamCommands
{
    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        yield return Watch(globals);
        yield return Health(globals);
    }

    private static Command Watch(GlobalOptions globals)
    {
        var paths = new Argument<string[]>("paths") { Description = "Logical paths of secrets to watch", Arity = ArgumentArity.ZeroOrMore };
        var prefixes = new Option<string[]>("--prefix") { Description = "Watch every secret beneath this folder (repeatable)", AllowMultipleArgumentsPerToken = false };
        var count = new Option<int>("--count") { Description = "Exit 0 after this many events (0: run until interrupted)" };
        var watch = new Command("watch", "Print one JSON line per new version of the watched secrets, until interrupted") { paths, prefixes, count };
        watch.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var request = new WatchSecretsRequest { Paths = { parse.GetValue(paths) ?? [] }, Prefixes = { parse.GetValue(prefixes) ?? [] } };
            if (request.Paths.Count + request.Prefixes.Count == 0)
            {
                return CliOutput.Usage("name at least one path or --prefix to watch");
            }
            if (parse.GetValue(count) < 0)
            {
                return CliOutput.Usage("--count must not be negative");
            }
            using var interrupted = new CancellationTokenSource();
            using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop(interrupted));
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop(interrupted));
            using var stream = call.Client.Raw.WatchSecrets(request, cancellationToken: interrupted.Token);
            try
            {
                // The response headers say the watch is in place; --timeout bounds getting there, not the watch.
                await stream.ResponseHeadersAsync.WaitAsync(call.Timeout, interrupted.Token).ConfigureAwait(false);
                var seen = 0;
                await foreach (var secretEvent in stream.ResponseStream.ReadAllAsync(interrupted.Token).ConfigureAwait(false))
                {
                    CliOutput.PrintLine(secretEvent);
                    await Console.Out.FlushAsync(interrupted.Token).ConfigureAwait(false);
                    if (++seen == parse.GetValue(count))
                    {
                        return ExitCodes.Ok;
                    }
                }
                CliOutput.WriteError("UNAVAILABLE", $"the broker at {call.Address} ended the watch");
                return ExitCodes.Unavailable;
            }
            catch (TimeoutException)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, ""));
            }
            catch (Exception ex) when (interrupted.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                return ExitCodes.Ok;
            }
        }));
        return watch;
    }

    private static Action<PosixSignalContext> Stop(CancellationTokenSource interrupted) => context =>
    {
        context.Cancel = true;
        interrupted.Cancel();
    };

    private static Command Health(GlobalOptions globals)
    {
        var service = new Option<string>("--service")
        {
            Description = "Health service: readiness (can serve reads now) or \"\" (liveness)",
            DefaultValueFactory = _ => "readiness",
        };
        var health = new Command("health", "Ask the broker's gRPC health service; exit 0 when SERVING, 6 otherwise (no token needed)") { service };
        health.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var client = new Grpc.Health.V1.Health.HealthClient(call.Channel);
            var response = await client.CheckAsync(new HealthCheckRequest { Service = parse.GetValue(service) ?? "" }, deadline: call.Deadline())
                .ResponseAsync.ConfigureAwait(false);
            call.Output.Print(response);
            return response.Status == HealthCheckResponse.Types.ServingStatus.Serving ? ExitCodes.Ok : ExitCodes.Unavailable;
        }, needsToken: false));
        return health;
    }
}
