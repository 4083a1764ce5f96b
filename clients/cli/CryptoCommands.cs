using System.CommandLine;
using System.Text.Json;
using SecretsBroker.Client.Envelope;

namespace SecretsBroker.Cli;

/// <summary>
/// encrypt-file and decrypt-file (the envelope format of docs/envelope-format.md, data keys from the broker's
/// Crypto service), and encrypt / decrypt for small values. Plaintext only ever travels through files and
/// stdin/stdout, never argv.
/// </summary>
internal static class CryptoCommands
{
    // Small values go through the broker whole; larger ones belong in encrypt-file (the broker's own limit is lower).
    private const int MaxValueBytes = 1 << 20;

    public static IEnumerable<Command> Build(GlobalOptions globals)
    {
        yield return EncryptFile(globals);
        yield return DecryptFile(globals);
        yield return EncryptValue(globals);
        yield return DecryptValue(globals);
    }

    private static Option<string[]> ContextOption() => new("--context", "-c")
    {
        Description = "Context entry key=value (repeatable), bound to the ciphertext: decrypting needs the same. Not secret: stored in the clear",
        AllowMultipleArgumentsPerToken = false,
    };

    private static Command EncryptFile(GlobalOptions globals)
    {
        var keyPath = new Argument<string>("key-path") { Description = "Key to wrap the data key under, for example keys/demo" };
        var source = new Argument<string>("source") { Description = "File to encrypt (- for stdin)" };
        var destination = new Argument<string>("destination") { Description = "Envelope file to write (- for stdout); written to a temporary file, then renamed" };
        var context = ContextOption();
        var chunkSize = new Option<int>("--chunk-size") { Description = "Plaintext bytes per chunk (4096 to 16777216)", DefaultValueFactory = _ => EnvelopeHeader.DefaultChunkSize };
        var command = new Command("encrypt-file", "Encrypt a file locally under a fresh data key from the broker (needs datakey on the key path)")
        {
            keyPath, source, destination, context, chunkSize,
        };
        command.SetAction(parse => Run(parse, globals, parse.GetValue(context), async (call, contextMap) =>
        {
            var size = parse.GetValue(chunkSize);
            if (size is < EnvelopeHeader.MinChunkSize or > EnvelopeHeader.MaxChunkSize)
            {
                return CliOutput.Usage($"--chunk-size must be {EnvelopeHeader.MinChunkSize} to {EnvelopeHeader.MaxChunkSize}");
            }
            var envelope = new EnvelopeEncryption(call.Client, size);
            var header = await WithStreamsAsync(parse.GetValue(source)!, parse.GetValue(destination)!,
                (input, output) => envelope.EncryptAsync(input, output, parse.GetValue(keyPath)!, contextMap),
                (input, path) => envelope.EncryptFileAsync(input, path, parse.GetValue(keyPath)!, contextMap)).ConfigureAwait(false);
            return Done(header, parse.GetValue(destination)!);
        }));
        return command;
    }

    private static Command DecryptFile(GlobalOptions globals)
    {
        var source = new Argument<string>("source") { Description = "Envelope file to decrypt (- for stdin)" };
        var destination = new Argument<string>("destination")
        {
            Description = "Plaintext file to write, renamed into place only once every chunk authenticated (- for stdout: chunks as they authenticate; discard the output on failure)",
        };
        var context = ContextOption();
        var keyPath = new Option<string>("--key-path") { Description = "Refuse the file unless it was encrypted under this key" };
        var command = new Command("decrypt-file", "Decrypt an envelope file (needs datakey on its key path)") { source, destination, context, keyPath };
        command.SetAction(parse => Run(parse, globals, parse.GetValue(context), async (call, contextMap) =>
        {
            var envelope = new EnvelopeEncryption(call.Client);
            var header = await WithStreamsAsync(parse.GetValue(source)!, parse.GetValue(destination)!,
                (input, output) => envelope.DecryptAsync(input, output, contextMap, parse.GetValue(keyPath)),
                (input, path) => envelope.DecryptFileAsync(input, path, contextMap, parse.GetValue(keyPath))).ConfigureAwait(false);
            return Done(header, parse.GetValue(destination)!);
        }));
        return command;
    }

    private static Command EncryptValue(GlobalOptions globals)
    {
        var keyPath = new Argument<string>("key-path") { Description = "Key to encrypt under, for example keys/demo" };
        var context = ContextOption();
        var command = new Command("encrypt", "Encrypt a small value read from stdin through the broker; prints the ciphertext in base64") { keyPath, context };
        command.SetAction(parse => Run(parse, globals, parse.GetValue(context), async (call, contextMap) =>
        {
            if (await ReadStdinAsync().ConfigureAwait(false) is not { } plaintext)
            {
                return CliOutput.Usage($"stdin holds more than {MaxValueBytes} bytes: use encrypt-file");
            }
            var response = await call.Client.EncryptAsync(parse.GetValue(keyPath)!, plaintext, contextMap, call.Deadline()).ConfigureAwait(false);
            CliOutput.PrintBare(response.Ciphertext.ToBase64());
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command DecryptValue(GlobalOptions globals)
    {
        var context = ContextOption();
        var keyPath = new Option<string>("--key-path") { Description = "Refuse the ciphertext unless it names this key" };
        var command = new Command("decrypt", "Decrypt a base64 ciphertext read from stdin through the broker; writes the plaintext bytes to stdout") { context, keyPath };
        command.SetAction(parse => Run(parse, globals, parse.GetValue(context), async (call, contextMap) =>
        {
            if (await ReadStdinAsync().ConfigureAwait(false) is not { } text)
            {
                return CliOutput.Usage($"stdin holds more than {MaxValueBytes} bytes");
            }
            byte[] ciphertext;
            try
            {
                ciphertext = Convert.FromBase64String(System.Text.Encoding.ASCII.GetString(text).Trim());
            }
            catch (FormatException)
            {
                return CliOutput.Usage("stdin is not a base64 ciphertext (as brokerctl encrypt prints it)");
            }
            var response = await call.Client.DecryptAsync(ciphertext, contextMap, parse.GetValue(keyPath), call.Deadline()).ConfigureAwait(false);
            CliOutput.PrintBytes(response.Plaintext.Span);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Task<int> Run(ParseResult parse, GlobalOptions globals, string[]? entries, Func<CallContext, Dictionary<string, string>, Task<int>> action)
    {
        var context = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in entries ?? [])
        {
            var separator = entry.IndexOf('=', StringComparison.Ordinal);
            if (separator <= 0 || !context.TryAdd(entry[..separator], entry[(separator + 1)..]))
            {
                return Task.FromResult(CliOutput.Usage($"--context takes key=value with distinct non-empty keys; got '{(separator <= 0 ? entry : entry[..separator])}'"));
            }
        }
        return BrokerCtl.RunAsync(parse, globals, async call =>
        {
            try
            {
                return await action(call, context).ConfigureAwait(false);
            }
            catch (EnvelopeException ex)
            {
                CliOutput.WriteError("ENVELOPE_" + Upper(ex.Error.ToString()), ex.Message);
                return ex.Error is EnvelopeError.Format or EnvelopeError.ContextMismatch or EnvelopeError.KeyPathMismatch ? ExitCodes.InvalidRequest : ExitCodes.Tampered;
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                CliOutput.WriteError("NOT_FOUND", ex.Message);
                return ExitCodes.NotFound;
            }
            catch (Exception ex) when (ex is ArgumentException or IOException or UnauthorizedAccessException)
            {
                return CliOutput.Usage(ex.Message);
            }
        });
    }

    /// <summary>ChunkAuthentication -> CHUNK_AUTHENTICATION.</summary>
    private static string Upper(string name) =>
        string.Concat(name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));

    private static async Task<EnvelopeHeader> WithStreamsAsync(string source, string destination, Func<Stream, Stream, Task<EnvelopeHeader>> streams,
        Func<string, string, Task<EnvelopeHeader>> files)
    {
        if (source != "-" && destination != "-")
        {
            return await files(source, destination).ConfigureAwait(false);
        }
        var input = source == "-" ? Console.OpenStandardInput() : File.OpenRead(source);
        await using (input.ConfigureAwait(false))
        {
            if (destination != "-")
            {
                return await EnvelopeEncryption.WriteAtomicallyAsync(destination, output => streams(input, output), CancellationToken.None).ConfigureAwait(false);
            }
            var output = Console.OpenStandardOutput();
            await using (output.ConfigureAwait(false))
            {
                return await streams(input, output).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Prints what was used, unless stdout carries the data.</summary>
    private static int Done(EnvelopeHeader header, string destination)
    {
        if (destination != "-")
        {
            using var writer = new Utf8JsonWriter(Console.OpenStandardOutput());
            writer.WriteStartObject();
            writer.WriteString("keyPath", header.KeyPath);
            writer.WriteString("keyVersion", header.KeyVersion);
            writer.WriteNumber("chunkSize", header.ChunkSize);
            writer.WriteEndObject();
            writer.Flush();
            Console.Out.WriteLine();
        }
        return ExitCodes.Ok;
    }

    private static async Task<byte[]?> ReadStdinAsync()
    {
        using var stdin = Console.OpenStandardInput();
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = await stdin.ReadAsync(chunk).ConfigureAwait(false)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxValueBytes)
            {
                return null;
            }
        }
        return buffer.ToArray();
    }
}
