using System.CommandLine;
using System.Text.Json;

namespace SecretsBroker.Cli;

/// <summary>put: writes a new version. The value comes from a file or stdin, never from argv (other users can read argv).</summary>
internal static class WriteCommands
{
    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        yield return Put(globals);
    }

    private static Command Put(GlobalOptions globals)
    {
        var path = new Argument<string>("path") { Description = "Logical path to write, for example demo/ml/api-key" };
        var file = new Option<string>("--file") { Description = "Read the value from this file instead of stdin" };
        var binary = new Option<bool>("--binary") { Description = "The value is raw bytes (binary_data); default: a JSON object of string fields" };
        var expected = new Option<string>("--expected-version")
        {
            Description = "Check-and-set: write only if this version is current (\"\" : only if the secret does not exist yet)",
        };
        var put = new Command("put", "Write a new version of a secret (value from --file or stdin)") { path, file, binary, expected };
        put.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            byte[] value;
            try
            {
                value = parse.GetValue(file) is { } name ? await File.ReadAllBytesAsync(name).ConfigureAwait(false) : await ReadStdinAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return CliOutput.Usage($"cannot read the value: {ex.GetType().Name}");
            }
            if (value.Length == 0)
            {
                return CliOutput.Usage("the value is empty: give it with --file or on stdin");
            }
            var target = parse.GetValue(path)!;
            var expectedVersion = parse.GetResult(expected) is null ? null : parse.GetValue(expected) ?? "";
            if (parse.GetValue(binary))
            {
                call.Output.Print(await call.Client.PutSecretAsync(target, value, expectedVersion, call.Deadline()).ConfigureAwait(false));
                return ExitCodes.Ok;
            }
            if (ParseFields(value) is not { } fields)
            {
                // The value is never quoted back: it is a secret.
                return CliOutput.Usage("the value must be a JSON object of string fields, for example {\"password\": \"...\"} (or use --binary)");
            }
            call.Output.Print(await call.Client.PutSecretAsync(target, fields, expectedVersion, call.Deadline()).ConfigureAwait(false));
            return ExitCodes.Ok;
        }));
        return put;
    }

    private static async Task<byte[]> ReadStdinAsync()
    {
        using var buffer = new MemoryStream();
        await Console.OpenStandardInput().CopyToAsync(buffer).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static Dictionary<string, string>? ParseFields(byte[] value)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                {
                    return null;
                }
                fields[property.Name] = property.Value.GetString()!;
            }
            return fields;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
