using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using SecretsBroker.Client;

namespace SecretsBroker.Cli;

/// <summary>
/// brokerctl: get, batch-get and list against a broker, printing proto3 JSON on stdout and errors as
/// JSON on stderr. The token comes from SECRETSBROKER_TOKEN or a file (--token-file /
/// SECRETSBROKER_TOKEN_FILE), never from argv, where other users of the machine could read it.
/// </summary>
public static class BrokerCtl
{
    public const string AddressVariable = "SECRETSBROKER_ADDRESS";
    public const string TokenVariable = "SECRETSBROKER_TOKEN";
    public const string TokenFileVariable = "SECRETSBROKER_TOKEN_FILE";

    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithIndentation());

    public static RootCommand BuildRootCommand()
    {
        var address = new Option<string>("--address")
        {
            Description = $"Broker address (default: ${AddressVariable} or http://127.0.0.1:5151)",
            Recursive = true,
        };
        var tokenFile = new Option<string>("--token-file")
        {
            Description = $"File holding the bearer token (default: ${TokenFileVariable}; else ${TokenVariable} holds the token itself)",
            Recursive = true,
        };
        var timeout = new Option<double>("--timeout")
        {
            Description = "Deadline per call, in seconds",
            DefaultValueFactory = _ => 10,
            Recursive = true,
        };

        var path = new Argument<string>("path") { Description = "Logical path, for example demo/ml/training-db" };
        var version = new Option<string>("--version") { Description = "Version id to read instead of the latest" };
        var stage = new Option<string>("--stage") { Description = "Staging label to read (aws-sm mounts), for example AWSPREVIOUS" };
        var maxAge = new Option<double?>("--max-age") { Description = "Seconds: refuse cached values older than this (the broker reads the backend)" };
        var bypassCache = new Option<bool>("--bypass-cache") { Description = "Read the backend, whatever the cache holds" };
        var get = new Command("get", "Read one secret") { path, version, stage, maxAge, bypassCache };
        get.SetAction((parse, ct) => RunAsync(parse, address, tokenFile, timeout, async (client, deadline) =>
        {
            if (parse.GetValue(version) is not null && parse.GetValue(stage) is not null)
            {
                return Usage("--version and --stage cannot be combined");
            }
            if (parse.GetValue(maxAge) is <= 0)
            {
                return Usage("--max-age must be a positive number of seconds");
            }
            var secret = parse.GetValue(stage) is { } stageName
                ? await client.GetSecretAtStageAsync(parse.GetValue(path)!, stageName, deadline, ct).ConfigureAwait(false)
                : await client.GetSecretAsync(parse.GetValue(path)!, parse.GetValue(version), deadline,
                    parse.GetValue(maxAge) is { } seconds ? TimeSpan.FromSeconds(seconds) : null, parse.GetValue(bypassCache), ct).ConfigureAwait(false);
            Console.Out.WriteLine(Json.Format(secret));
            return ExitCodes.Ok;
        }));

        var paths = new Argument<string[]>("paths") { Description = "Logical paths", Arity = ArgumentArity.OneOrMore };
        var batchGet = new Command("batch-get", $"Read several secrets in one call (exit {ExitCodes.PartialBatch} when some items failed)") { paths };
        batchGet.SetAction((parse, ct) => RunAsync(parse, address, tokenFile, timeout, async (client, deadline) =>
        {
            var results = await client.BatchGetSecretsAsync(parse.GetValue(paths)!, deadline, ct).ConfigureAwait(false);
            var response = new V1.BatchGetSecretsResponse();
            response.Results.Add(results);
            Console.Out.WriteLine(Json.Format(response));
            return results.Any(r => r.ResultCase != V1.BatchGetSecretsResult.ResultOneofCase.Secret) ? ExitCodes.PartialBatch : ExitCodes.Ok;
        }));

        var prefix = new Argument<string>("prefix") { Description = "Folder to list beneath, starting with a mount prefix" };
        var pageSize = new Option<int>("--page-size") { Description = "Entries per page (0: the broker's default)" };
        var pageToken = new Option<string>("--page-token") { Description = "Continue a listing from a previous next_page_token" };
        var all = new Option<bool>("--all") { Description = "Follow next_page_token and print every entry as one list" };
        var list = new Command("list", "List secret paths beneath a prefix (never values)") { prefix, pageSize, pageToken, all };
        list.SetAction((parse, ct) => RunAsync(parse, address, tokenFile, timeout, async (client, deadline) =>
        {
            var response = await client.ListSecretsPageAsync(parse.GetValue(prefix)!, parse.GetValue(pageSize), parse.GetValue(pageToken), deadline, ct).ConfigureAwait(false);
            while (parse.GetValue(all) && response.NextPageToken.Length > 0)
            {
                var next = await client.ListSecretsPageAsync(parse.GetValue(prefix)!, parse.GetValue(pageSize), response.NextPageToken, deadline, ct).ConfigureAwait(false);
                response.Secrets.Add(next.Secrets);
                response.NextPageToken = next.NextPageToken;
            }
            Console.Out.WriteLine(Json.Format(response));
            return ExitCodes.Ok;
        }));

        return new RootCommand("brokerctl: read secrets from a SecretsBroker") { address, tokenFile, timeout, get, batchGet, list };
    }

    private static async Task<int> RunAsync(ParseResult parse, Option<string> address, Option<string> tokenFile, Option<double> timeout,
        Func<BrokerClient, DateTime, Task<int>> action)
    {
        var options = new BrokerClientOptions
        {
            Address = new Uri(parse.GetValue(address) ?? Environment.GetEnvironmentVariable(AddressVariable) ?? "http://127.0.0.1:5151"),
            DefaultTimeout = null,
        };
        var file = parse.GetValue(tokenFile) ?? Environment.GetEnvironmentVariable(TokenFileVariable);
        if (file is { Length: > 0 })
        {
            if (!File.Exists(file))
            {
                return Usage($"token file '{file}' does not exist");
            }
            options.TokenFile = file;
        }
        else
        {
            options.Token = Environment.GetEnvironmentVariable(TokenVariable) is { Length: > 0 } token ? token : null;
        }

        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(options);
        using (channel)
        {
            try
            {
                return await action(client, DateTime.UtcNow.AddSeconds(parse.GetValue(timeout))).ConfigureAwait(false);
            }
            catch (RpcException ex)
            {
                WriteError(CanonicalName(ex.StatusCode), ex.Status.Detail);
                return ExitCodes.For(ex.StatusCode);
            }
        }
    }

    /// <summary>The status name as gRPC documents it: NotFound -> NOT_FOUND.</summary>
    private static string CanonicalName(StatusCode code) =>
        string.Concat(code.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));

    private static int Usage(string message)
    {
        WriteError("USAGE", message);
        return ExitCodes.Usage;
    }

    private static void WriteError(string code, string message)
    {
        using var writer = new Utf8JsonWriter(Console.OpenStandardError(), new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("code", code);
        writer.WriteString("message", message);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        Console.Error.WriteLine();
    }
}
