using System.CommandLine;
using System.CommandLine.Invocation;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using SecretsBroker.Client;

namespace SecretsBroker.Cli;

/// <summary>
/// brokerctl: every broker API from the shell (get, batch-get, list, put, issue, revoke, lease, watch, health),
/// printing proto3 JSON on stdout and errors as JSON on stderr, with one exit code per kind of failure
/// (<see cref="ExitCodes"/>). The token comes from SECRETSBROKER_TOKEN or a file (--token-file /
/// SECRETSBROKER_TOKEN_FILE), never from argv, where other users of the machine could read it.
/// </summary>
public static class BrokerCtl
{
    public const string AddressVariable = "SECRETSBROKER_ADDRESS";
    public const string TokenVariable = "SECRETSBROKER_TOKEN";
    public const string TokenFileVariable = "SECRETSBROKER_TOKEN_FILE";
    public const int DefaultPort = 5151;

    /// <summary>Parses and runs; a usage error is exit 2 with the JSON error on stderr, never System.CommandLine's help text and exit 1.</summary>
    public static async Task<int> InvokeAsync(string[] args)
    {
        var parse = BuildRootCommand().Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            return CliOutput.Usage(string.Join("; ", parse.Errors.Select(e => e.Message.TrimEnd('.'))) + " (see brokerctl --help)");
        }
        // Commands that run for long (watch, lease) handle SIGINT/SIGTERM themselves.
        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
    }

    public static RootCommand BuildRootCommand()
    {
        var globals = new GlobalOptions(
            new Option<string>("--address")
            {
                Description = $"Broker address: http(s)://host:port, or host:port (plaintext on loopback, TLS elsewhere). Default: ${AddressVariable} or 127.0.0.1:{DefaultPort}",
                Recursive = true,
            },
            new Option<string>("--token-file")
            {
                Description = $"File holding the bearer token (default: ${TokenFileVariable}; else ${TokenVariable} holds the token itself)",
                Recursive = true,
            },
            new Option<double>("--timeout")
            {
                Description = "Deadline per call, in seconds (streams: for opening them)",
                DefaultValueFactory = _ => 10,
                Recursive = true,
            },
            new Option<bool>("--compact") { Description = "Print JSON on one line", Recursive = true });

        var root = new RootCommand("brokerctl: read secrets and keep credentials alive through a SecretsBroker")
        {
            globals.Address, globals.TokenFile, globals.Timeout, globals.Compact,
        };
        foreach (var command in ReadCommands.Build(globals).Concat(WriteCommands.Build(globals)).Concat(LeaseCommands.Build(globals)).Concat(StreamCommands.Build(globals)).Append(RenderCommand.Build(globals)).Append(ExecCommand.Build(globals)).Concat(CryptoCommands.Build(globals)).Concat(RotateCommands.Build(globals)))
        {
            root.Subcommands.Add(command);
        }
        return root;
    }

    /// <summary>
    /// Runs <paramref name="action"/> with a client for the chosen address and token; gRPC failures become the
    /// JSON error and the exit code of their status, transport failures UNAVAILABLE naming the address tried.
    /// </summary>
    internal static async Task<int> RunAsync(ParseResult parse, GlobalOptions globals, Func<CallContext, Task<int>> action, bool needsToken = true)
    {
        var addressText = parse.GetValue(globals.Address) ?? Environment.GetEnvironmentVariable(AddressVariable) ?? $"127.0.0.1:{DefaultPort}";
        if (ParseAddress(addressText) is not { } address)
        {
            return CliOutput.Usage($"--address '{addressText}' is not an address: use host:port or http(s)://host:port");
        }
        var timeout = parse.GetValue(globals.Timeout);
        if (timeout <= 0)
        {
            return CliOutput.Usage("--timeout must be a positive number of seconds");
        }
        var options = new BrokerClientOptions { Address = address, DefaultTimeout = null };
        var file = parse.GetValue(globals.TokenFile) ?? Environment.GetEnvironmentVariable(TokenFileVariable);
        if (needsToken && file is { Length: > 0 })
        {
            if (!File.Exists(file))
            {
                return CliOutput.Usage($"token file '{file}' does not exist");
            }
            options.TokenFile = file;
        }
        else if (needsToken)
        {
            options.Token = Environment.GetEnvironmentVariable(TokenVariable) is { Length: > 0 } token ? token : null;
        }

        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(options);
        using (channel)
        {
            var context = new CallContext(client, channel, address, TimeSpan.FromSeconds(timeout), new CliOutput(parse.GetValue(globals.Compact)));
            try
            {
                return await action(context).ConfigureAwait(false);
            }
            catch (RpcException ex)
            {
                return Fail(ex, address, timeout);
            }
        }
    }

    /// <summary>The JSON error and exit code for a failed call.</summary>
    internal static int Fail(RpcException ex, Uri address, double timeoutSeconds)
    {
        if (TransportProblem(ex) is { } problem)
        {
            CliOutput.WriteError("UNAVAILABLE", $"cannot reach a broker at {address}: {problem}");
            return ExitCodes.Unavailable;
        }
        var message = ex.StatusCode == StatusCode.DeadlineExceeded && ex.Status.DebugException is null && ex.Status.Detail.Length == 0
            ? $"no answer from {address} within {timeoutSeconds} s"
            : ex.Status.Detail;
        if (ex.StatusCode == StatusCode.DeadlineExceeded && !message.Contains(address.Authority, StringComparison.Ordinal))
        {
            message = $"{message} (broker at {address}, --timeout {timeoutSeconds} s)";
        }
        CliOutput.WriteError(CliOutput.StatusName(ex.StatusCode), message);
        return ExitCodes.For(ex.StatusCode);
    }

    /// <summary>
    /// host:port without a scheme is plaintext on loopback (the quick start) and TLS elsewhere, so a token
    /// never crosses a network in the clear by default; no port means the broker's default port.
    /// </summary>
    internal static Uri? ParseAddress(string text)
    {
        text = text.Trim();
        var candidate = text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text;
        if (!Uri.TryCreate(candidate, UriKind.Absolute, out var uri) || uri.Host.Length == 0 ||
            (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.PathAndQuery is not ("/" or ""))
        {
            return null;
        }
        if (candidate != text)
        {
            var port = HasExplicitPort(text) ? uri.Port : DefaultPort;
            uri = new UriBuilder(IsLoopback(uri.Host) ? Uri.UriSchemeHttp : Uri.UriSchemeHttps, uri.Host, port).Uri;
        }
        return uri;
    }

    private static bool HasExplicitPort(string hostPort) =>
        hostPort.StartsWith('[') ? hostPort.Contains("]:", StringComparison.Ordinal) : hostPort.Contains(':', StringComparison.Ordinal);

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>
    /// What went wrong below gRPC (connection refused, no such host, TLS, a server that does not speak gRPC
    /// over HTTP/2), or null when the broker itself answered with the status.
    /// </summary>
    private static string? TransportProblem(RpcException ex)
    {
        if (ex.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown) || ex.Status.DebugException is not { } debug)
        {
            return null;
        }
        for (Exception? inner = debug; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return $"{socket.Message} ({socket.SocketErrorCode})";
            }
        }
        var innermost = debug;
        while (innermost.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }
        return innermost is HttpRequestException or IOException or System.Security.Authentication.AuthenticationException or HttpProtocolException
            || debug is HttpRequestException or IOException
            ? $"{innermost.Message} ({innermost.GetType().Name})"
            : null;
    }
}

/// <summary>The options every command shares.</summary>
internal sealed record GlobalOptions(Option<string> Address, Option<string> TokenFile, Option<double> Timeout, Option<bool> Compact);

/// <summary>One command's client, address, per-call timeout and output.</summary>
internal sealed record CallContext(BrokerClient Client, Grpc.Net.Client.GrpcChannel Channel, Uri Address, TimeSpan Timeout, CliOutput Output)
{
    public DateTime Deadline() => DateTime.UtcNow.Add(Timeout);
}
