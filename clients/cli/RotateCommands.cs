using System.CommandLine;

namespace SecretsBroker.Cli;

/// <summary>rotate.</summary>
internal static class RotateCommands
{
    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        var path = new Argument<string>("path") { Description = "Logical path of the secret to rotate with its configured strategy" };
        var rotate = new Command("rotate", "Rotate a secret now (needs the rotate capability); prints the new and the previous version") { path };
        rotate.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var response = await call.Client.RotateSecretAsync(parse.GetValue(path)!, call.Deadline()).ConfigureAwait(false);
            call.Output.Print(response);
            return ExitCodes.Ok;
        }));
        yield return rotate;
    }
}
