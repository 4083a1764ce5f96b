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
        Assert.Contains("UNAVAILABLE", stderr);
    }

    [Fact]
    public async Task Batch_get_prints_every_item_and_exits_partial_when_one_failed()
    {
        var (exitCode, stdout, _) = await RunAsync(["batch-get", "team/ml/db", "team/ml/missing"], token: BrokerHost.TestToken);

        Assert.Equal(8, exitCode);
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal("FAKE-user-alpha", results[0].GetProperty("secret").GetProperty("data").GetProperty("username").GetString());
        Assert.Equal(5, results[1].GetProperty("error").GetProperty("code").GetInt32());
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
