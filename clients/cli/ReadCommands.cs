using System.CommandLine;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>get, batch-get and list.</summary>
internal static class ReadCommands
{
    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        yield return Get(globals);
        yield return BatchGet(globals);
        yield return List(globals);
    }

    private static Command Get(GlobalOptions globals)
    {
        var path = new Argument<string>("path") { Description = "Logical path, for example demo/ml/training-db" };
        var version = new Option<string>("--version") { Description = "Version id to read instead of the latest" };
        var stage = new Option<string>("--stage") { Description = "Staging label to read (aws-sm mounts), for example AWSPREVIOUS" };
        var maxAge = new Option<double?>("--max-age") { Description = "Seconds: refuse cached values older than this (the broker reads the backend)" };
        var bypassCache = new Option<bool>("--bypass-cache") { Description = "Read the backend, whatever the cache holds" };
        var field = new Option<string>("--field", "-f") { Description = "Print only this data field's value, bare (for $(...))" };
        var raw = new Option<bool>("--raw") { Description = "Print the value bare: binary data as bytes, or the only data field" };
        var get = new Command("get", "Read one secret") { path, version, stage, maxAge, bypassCache, field, raw };
        get.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            if (parse.GetValue(version) is not null && parse.GetValue(stage) is not null)
            {
                return CliOutput.Usage("--version and --stage cannot be combined");
            }
            if (parse.GetValue(maxAge) is <= 0)
            {
                return CliOutput.Usage("--max-age must be a positive number of seconds");
            }
            if (parse.GetValue(field) is not null && parse.GetValue(raw))
            {
                return CliOutput.Usage("--field and --raw cannot be combined");
            }
            var secret = parse.GetValue(stage) is { } stageName
                ? await call.Client.GetSecretAtStageAsync(parse.GetValue(path)!, stageName, call.Deadline()).ConfigureAwait(false)
                : await call.Client.GetSecretAsync(parse.GetValue(path)!, parse.GetValue(version), call.Deadline(),
                    parse.GetValue(maxAge) is { } seconds ? TimeSpan.FromSeconds(seconds) : null, parse.GetValue(bypassCache)).ConfigureAwait(false);
            if (parse.GetValue(field) is { } name)
            {
                return PrintField(secret, name);
            }
            if (parse.GetValue(raw))
            {
                return PrintRaw(secret);
            }
            call.Output.Print(secret);
            return ExitCodes.Ok;
        }));
        return get;
    }

    private static int PrintField(Secret secret, string name)
    {
        if (secret.Data.TryGetValue(name, out var value))
        {
            CliOutput.PrintBare(value);
            return ExitCodes.Ok;
        }
        // Field names are not secret; values never appear in errors.
        var fields = secret.Data.Count == 0 ? "it holds binary data only (use --raw)" : "its fields: " + string.Join(", ", secret.Data.Keys.Order(StringComparer.Ordinal));
        CliOutput.WriteError("NOT_FOUND", $"the secret has no field '{name}'; {fields}");
        return ExitCodes.NotFound;
    }

    private static int PrintRaw(Secret secret)
    {
        if (secret.Data.Count == 0)
        {
            CliOutput.PrintBytes(secret.BinaryData.Span);
            return ExitCodes.Ok;
        }
        if (secret.Data.Count == 1)
        {
            CliOutput.PrintBare(secret.Data.Values.Single());
            return ExitCodes.Ok;
        }
        return CliOutput.Usage($"--raw needs a binary secret or a single field; this one has {secret.Data.Count} fields: pick one with -f ({string.Join(", ", secret.Data.Keys.Order(StringComparer.Ordinal))})");
    }

    private static Command BatchGet(GlobalOptions globals)
    {
        var paths = new Argument<string[]>("paths") { Description = "Logical paths", Arity = ArgumentArity.OneOrMore };
        var batchGet = new Command("batch-get", $"Read several secrets in one call (exit {ExitCodes.PartialBatch} when some items failed)") { paths };
        batchGet.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var results = await call.Client.BatchGetSecretsAsync(parse.GetValue(paths)!, call.Deadline()).ConfigureAwait(false);
            var response = new BatchGetSecretsResponse();
            response.Results.Add(results);
            // Item errors carry a status number on the wire; print its name, as top-level errors do.
            call.Output.Print(response, json =>
            {
                foreach (var item in json["results"]!.AsArray())
                {
                    CliOutput.NameErrorCode(item);
                }
            });
            return results.Any(r => r.ResultCase != BatchGetSecretsResult.ResultOneofCase.Secret) ? ExitCodes.PartialBatch : ExitCodes.Ok;
        }));
        return batchGet;
    }

    private static Command List(GlobalOptions globals)
    {
        var prefix = new Argument<string>("prefix") { Description = "Folder to list beneath, starting with a mount prefix" };
        var pageSize = new Option<int>("--page-size") { Description = "Entries per page (0: the broker's default)" };
        var pageToken = new Option<string>("--page-token") { Description = "Continue a listing from a previous next_page_token" };
        var all = new Option<bool>("--all") { Description = "Follow next_page_token and print every entry as one list" };
        var list = new Command("list", "List secret paths beneath a prefix (never values)") { prefix, pageSize, pageToken, all };
        list.SetAction(parse => BrokerCtl.RunAsync(parse, globals, async call =>
        {
            var response = await call.Client.ListSecretsPageAsync(parse.GetValue(prefix)!, parse.GetValue(pageSize), parse.GetValue(pageToken), call.Deadline())
                .ConfigureAwait(false);
            while (parse.GetValue(all) && response.NextPageToken.Length > 0)
            {
                var next = await call.Client.ListSecretsPageAsync(parse.GetValue(prefix)!, parse.GetValue(pageSize), response.NextPageToken, call.Deadline())
                    .ConfigureAwait(false);
                response.Secrets.Add(next.Secrets);
                response.NextPageToken = next.NextPageToken;
            }
            call.Output.Print(response);
            return ExitCodes.Ok;
        }));
        return list;
    }
}
