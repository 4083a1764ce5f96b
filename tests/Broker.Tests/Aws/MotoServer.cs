using System.Text.Json;
using System.Text.Json.Nodes;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// moto's Secrets Manager in server mode on a loopback port it picks itself (port 0) (<c>python3 -m moto.server</c>; set
/// MOTO_PYTHON to use another interpreter), shared by the tests of one class, plus the boto3 helper
/// script for cross-checks. Tests keep apart by giving their secrets unique names.
/// </summary>
public sealed class MotoServer : IAsyncLifetime
{
    public const string Region = "us-east-1";
    public const string AccessKeyId = "testing";
    public const string SecretAccessKey = "testing";

    private ExternalProcess? _process;

    public static string Python => Environment.GetEnvironmentVariable("MOTO_PYTHON") is { Length: > 0 } python ? python : "python3";

    /// <summary>The boto3 helper, read from the source tree.</summary>
    public static string HelperScript => Path.Combine(RepositoryLayout.Root, "tests", "Broker.Tests", "Aws", "boto3_helper.py");

    /// <summary>The port to listen on (for a test that points a mount at it before moto runs); default: moto binds port 0 and reports it.</summary>
    public int? RequestedPort { get; init; }

    /// <summary>
    /// Certificate (chain) and key files in PEM: moto then serves HTTPS (<c>--ssl-cert</c>, <c>--ssl-key</c>; Python's
    /// ssl module sends every certificate of the file, so a leaf + intermediate file presents both).
    /// </summary>
    public (string CertificateFile, string KeyFile)? Tls { get; init; }

    /// <summary>The CA bundle boto3 verifies a TLS moto with (AWS_CA_BUNDLE), so botocore checks the same chain the broker does.</summary>
    public string? Boto3CaBundle { get; init; }

    public int Port { get; private set; }

    public Uri Url => new($"{(Tls is null ? "http" : "https")}://127.0.0.1:{Port}/");

    /// <summary>
    /// A Python script that starts moto's server instead of <c>-m moto.server</c> (same arguments), for tests that need a
    /// documented AWS behaviour moto lacks (tests/Broker.Tests/Aws/moto_rotation_server.py says which and why).
    /// </summary>
    public string? Script { get; init; }

    /// <summary>Extra environment for the moto process (for example INITIAL_NO_AUTH_ACTION_COUNT).</summary>
    public IReadOnlyDictionary<string, string?> ProcessEnvironment { get; init; } = new Dictionary<string, string?>();

    /// <summary>An HttpClient for talking to moto outside the broker (it trusts any certificate of a TLS moto: loopback test server only).</summary>
    public HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => Tls is not null },
    }) { Timeout = TimeSpan.FromSeconds(5) };

    public async Task InitializeAsync()
    {
        string[] tls = Tls is { } files ? ["--ssl-cert", files.CertificateFile, "--ssl-key", files.KeyFile] : [];
        var port = RequestedPort ?? 0;
        string[] entry = Script is null ? ["-m", "moto.server"] : [Script];
        _process = ExternalProcess.Start(Python, [.. entry, "-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. tls],
            ProcessEnvironment);
        // werkzeug logs the port it bound ("Running on http://127.0.0.1:43287"), so no free port has to be guessed.
        var running = await _process.WaitForOutputAsync(line => line.Contains("Running on http", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        Port = int.Parse(running[(running.LastIndexOf(':') + 1)..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        // Listening is not serving yet: wait until moto answers an HTTP request.
        using var http = CreateHttpClient();
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                using var response = await http.GetAsync(new Uri(Url, "moto-api/"));
                return true;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "moto to answer HTTP");
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }

    /// <summary>Runs one boto3 helper command against this server and returns its JSON answer; fails the test on any error.</summary>
    public async Task<JsonObject> Boto3Async(object command)
    {
        var (exitCode, stdout, stderr) = await TryBoto3Async(command);
        Assert.True(exitCode == 0, $"boto3 helper failed ({exitCode}): {stderr}");
        return JsonNode.Parse(stdout)!.AsObject();
    }

    /// <summary>Runs one boto3 helper command; exit code 3 means an AWS error whose code is on stderr.</summary>
    public Task<(int ExitCode, string StandardOutput, string StandardError)> TryBoto3Async(object command) =>
        ExternalProcess.RunAsync(Python, [HelperScript, JsonSerializer.Serialize(command)],
            new Dictionary<string, string?> { ["MOTO_URL"] = Url.ToString(), ["MOTO_REGION"] = Region, ["AWS_CA_BUNDLE"] = Boto3CaBundle }, TimeSpan.FromSeconds(60));

    /// <summary>Configuration of an aws-sm mount pointing at this server with fixed emulator keys.</summary>
    public Dictionary<string, string?> MountConfiguration(string prefix = "aws", int index = 0, int maxRetries = 1) => new()
    {
        [$"Broker:Mounts:{index}:Prefix"] = prefix,
        [$"Broker:Mounts:{index}:Type"] = "aws-sm",
        [$"Broker:Mounts:{index}:Region"] = Region,
        [$"Broker:Mounts:{index}:ServiceUrl"] = Url.ToString(),
        [$"Broker:Mounts:{index}:AccessKeyId"] = AccessKeyId,
        [$"Broker:Mounts:{index}:SecretAccessKey"] = SecretAccessKey,
        [$"Broker:Mounts:{index}:MaxRetries"] = maxRetries.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [$"Broker:Mounts:{index}:RetryBaseDelay"] = "00:00:00.050",
    };
}
