using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.ReadApi;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>brokerctl run as a real process against the real broker.</summary>
[Collection(LocalMountCollection.Name)]
[Trait("Category", "Integration")]
public sealed class BrokerCtlTests(LocalMountFixture fixture)
{
    [Fact]
    public async Task Get_prints_the_secret_as_json_and_exits_zero()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/db"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("FAKE-password-alpha", json.RootElement.GetProperty("data").GetProperty("password").GetString());
        Assert.Equal("local", json.RootElement.GetProperty("serving").GetProperty("backendType").GetString());
    }

    [Fact]
    public async Task Get_with_a_version_reads_that_version()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/registry", "--version", "1"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        Assert.Contains("FAKE-registry-v1", stdout);
    }

    [Fact]
    public async Task The_token_can_come_from_a_file()
    {
        using var directory = new TestDirectory();
        var tokenFile = directory.WriteFile("token", BrokerHost.TestToken + "\n");

        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/db", "--token-file", tokenFile], token: null);

        Assert.Equal(0, exitCode);
        Assert.Contains("FAKE-user-alpha", stdout);
    }

    [Theory]
    [InlineData(new[] { "get", "team/ml/missing" }, 3, "NOT_FOUND")]
    [InlineData(new[] { "get", "team//bad" }, 7, "INVALID_ARGUMENT")]
    [InlineData(new[] { "get", "team/ml/db", "--stage", "AWSCURRENT" }, 7, "FAILED_PRECONDITION")]
    [InlineData(new[] { "get", "team/ml/db", "--version", "1", "--stage", "AWSCURRENT" }, 2, "USAGE")]
    public async Task Failures_exit_with_a_code_per_status_and_a_json_error(string[] arguments, int expectedExit, string expectedCode)
    {
        var (exitCode, _, stderr) = await RunAsync(arguments, token: BrokerHost.TestToken);

        Assert.Equal(expectedExit, exitCode);
        using var json = JsonDocument.Parse(stderr);
        Assert.Equal(expectedCode, json.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task No_token_exits_with_the_unauthenticated_code()
    {
        var (exitCode, _, stderr) = await RunAsync(["get", "team/ml/db"], token: null);

        Assert.Equal(5, exitCode);
        Assert.Contains("UNAUTHENTICATED", stderr);
    }

    [Fact]
    public async Task An_unreachable_broker_exits_with_the_unavailable_code()
    {
        using var closed = FreePort.Reserve();
        var (exitCode, _, stderr) = await RunAsync(["get", "team/ml/db", "--address", $"http://127.0.0.1:{closed.Port}", "--timeout", "5"],
            token: BrokerHost.TestToken, address: null);

        Assert.Equal(6, exitCode);
        using var json = JsonDocument.Parse(stderr);
        Assert.Equal("UNAVAILABLE", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        // The message names the address tried, not just "Error connecting to subchannel."
        Assert.Contains($"127.0.0.1:{closed.Port}", json.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_server_that_does_not_speak_grpc_is_unavailable_with_its_address_not_internal()
    {
        // An HTTP/1.1 server where the broker should be: the gRPC client reports INTERNAL for it.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                await socket.SendAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
            }
        });

        var (exitCode, _, stderr) = await RunAsync(["get", "team/ml/db", "--address", $"127.0.0.1:{port}", "--timeout", "5"],
            token: BrokerHost.TestToken, address: null);
        await stop.CancelAsync();

        Assert.Equal(6, exitCode);
        using var json = JsonDocument.Parse(stderr);
        Assert.Equal("UNAVAILABLE", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains($"127.0.0.1:{port}", json.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_address_without_a_scheme_works()
    {
        var (exitCode, stdout, stderr) = await RunAsync(["get", "team/ml/db", "--address", $"127.0.0.1:{fixture.Host.Address.Port}"],
            token: BrokerHost.TestToken, address: null);

        Assert.True(exitCode == 0, stderr);
        Assert.Contains("FAKE-user-alpha", stdout);
    }

    [Theory]
    [InlineData("")]
    [InlineData("bogus")]
    [InlineData("get")]
    [InlineData("get team/ml/db --no-such-option")]
    [InlineData("get team/ml/db --address http://")]
    public async Task Usage_errors_exit_2_with_the_json_error(string commandLine)
    {
        var arguments = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var (exitCode, stdout, stderr) = await RunAsync(arguments, token: BrokerHost.TestToken);

        Assert.Equal(2, exitCode);
        Assert.Empty(stdout);
        using var json = JsonDocument.Parse(stderr);
        Assert.Equal("USAGE", json.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_field_prints_its_bare_value_for_command_substitution()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/db", "-f", "password"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        Assert.Equal("FAKE-password-alpha", stdout);
    }

    [Fact]
    public async Task A_missing_field_is_not_found_and_names_the_fields_that_exist()
    {
        var (exitCode, stdout, stderr) = await RunAsync(["get", "team/ml/db", "--field", "nope"], token: BrokerHost.TestToken);

        Assert.Equal(3, exitCode);
        Assert.Empty(stdout);
        Assert.Contains("password, username", stderr);
        Assert.DoesNotContain("FAKE-password-alpha", stderr);
    }

    [Fact]
    public async Task Raw_prints_binary_data_as_bytes_and_refuses_a_secret_of_several_fields()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/certs/ca", "--raw"], token: BrokerHost.TestToken);
        Assert.Equal(0, exitCode);
        Assert.Equal("FAKE-CA-BYTES", stdout);

        (exitCode, stdout, var stderr) = await RunAsync(["get", "team/ml/db", "--raw"], token: BrokerHost.TestToken);
        Assert.Equal(2, exitCode);
        Assert.Empty(stdout);
        Assert.Contains("-f", stderr);
    }

    [Fact]
    public async Task Compact_prints_one_line()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/db", "--compact"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        Assert.Single(stdout.TrimEnd('\n').Split('\n'));
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("FAKE-user-alpha", json.RootElement.GetProperty("data").GetProperty("username").GetString());
    }

    [Fact]
    public async Task An_empty_listing_prints_an_empty_secrets_array()
    {
        var (exitCode, stdout, stderr) = await RunAsync(["list", "team/nothing-here", "--compact"], token: BrokerHost.TestToken);

        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("secrets").ValueKind);
        Assert.Equal(0, json.RootElement.GetProperty("secrets").GetArrayLength());
    }

    [Fact]
    public async Task Health_asks_the_readiness_service_without_a_token()
    {
        var (exitCode, stdout, stderr) = await RunAsync(["health"], token: null);

        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("SERVING", json.RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Batch_get_prints_every_item_and_exits_partial_when_one_failed()
    {
        var (exitCode, stdout, _) = await RunAsync(["batch-get", "team/ml/db", "team/ml/missing"], token: BrokerHost.TestToken);

        Assert.Equal(8, exitCode);
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal("FAKE-user-alpha", results[0].GetProperty("secret").GetProperty("data").GetProperty("username").GetString());
        // Item errors name their status as top-level errors do, not by number.
        Assert.Equal("NOT_FOUND", results[1].GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task List_all_follows_pages()
    {
        var (exitCode, stdout, _) = await RunAsync(["list", "team", "--page-size", "1", "--all"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(["team/certs/ca", "team/ml/db", "team/ml/registry"],
            json.RootElement.GetProperty("secrets").EnumerateArray().Select(s => s.GetProperty("path").GetString()));
    }

    [Fact]
    public async Task Bypass_cache_reads_the_backend_and_says_so()
    {
        var (exitCode, stdout, _) = await RunAsync(["get", "team/ml/db", "--bypass-cache"], token: BrokerHost.TestToken);

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("VALUE_SOURCE_BACKEND", json.RootElement.GetProperty("serving").GetProperty("source").GetString());
    }

    [Fact]
    public async Task A_non_positive_max_age_is_a_usage_error()
    {
        var (exitCode, _, stderr) = await RunAsync(["get", "team/ml/db", "--max-age", "0"], token: BrokerHost.TestToken);

        Assert.Equal(2, exitCode);
        Assert.Contains("--max-age must be a positive", stderr);
    }

    private Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(string[] arguments, string? token, string? address = "host")
    {
        var environment = new Dictionary<string, string?>
        {
            ["SECRETSBROKER_TOKEN"] = token,
            ["SECRETSBROKER_TOKEN_FILE"] = null,
            ["SECRETSBROKER_ADDRESS"] = address is null ? null : fixture.Host.Address.ToString(),
        };
        return ExternalProcess.RunAsync(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], environment);
    }
}
