using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>brokerctl put run as a real process against a real broker with a writable local mount.</summary>
[Trait("Category", "Integration")]
public sealed class BrokerCtlPutTests : IAsyncLifetime
{
    private BrokerHost _host = null!;

    public async Task InitializeAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("dev.yaml", "secrets:\n  app/api:\n    data: { key: FAKE-cli-v1 }\n");
        directory.WriteFile("put-policy.yaml", """
            policies:
              - name: writer
                appliesTo: { subjects: [test-alpha] }
                rules:
                  - paths: ["**"]
                    capabilities: [read, write]
            """);
        _host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Policy:File"] = "put-policy.yaml",
            ["Broker:Mounts:0:Prefix"] = "dev",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "dev.yaml",
            ["Broker:Mounts:0:Writable"] = "true",
        }, directory);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Put_takes_fields_from_a_file_or_stdin_and_bytes_with_binary()
    {
        var fields = _host.Directory.WriteFile("value.json", """{"key": "FAKE-cli-v2"}""");
        var bytes = _host.Directory.WriteFile("value.bin", "FAKE-bytes");

        var (fromFile, stdout, _) = await RunAsync($"put dev/app/api --file '{fields}' --expected-version 1");
        var written = JsonDocument.Parse(stdout).RootElement;
        var (fromStdin, stdinOut, _) = await RunAsync($"put dev/app/api < '{fields}'");
        var (binary, _, _) = await RunAsync($"put dev/app/blob --binary --expected-version '' --file '{bytes}'");

        Assert.Equal([0, 0, 0], new[] { fromFile, fromStdin, binary });
        Assert.Equal(("dev/app/api", "2"), (written.GetProperty("path").GetString(), written.GetProperty("version").GetString()));
        Assert.Equal("3", JsonDocument.Parse(stdinOut).RootElement.GetProperty("version").GetString());
        Assert.Equal("FAKE-cli-v2", (await _host.CreateClient().GetSecretAsync("dev/app/api")).Data["key"]);
        Assert.Equal("FAKE-bytes", (await _host.CreateClient().GetSecretAsync("dev/app/blob")).BinaryData.ToStringUtf8());
        _host.Logs.AssertNoneContain(["FAKE-cli-v2", "FAKE-bytes"]);
    }

    [Fact]
    public async Task A_value_that_is_not_an_object_of_strings_is_a_usage_error_that_does_not_echo_it_and_a_stale_version_is_refused()
    {
        var notObject = _host.Directory.WriteFile("bad.json", """["FAKE-not-an-object"]""");
        var fields = _host.Directory.WriteFile("ok.json", """{"key": "FAKE-cli-stale"}""");

        var (usage, _, usageError) = await RunAsync($"put dev/app/api --file '{notObject}'");
        var (stale, _, staleError) = await RunAsync($"put dev/app/api --file '{fields}' --expected-version 99");

        Assert.Equal(2, usage);
        Assert.DoesNotContain("FAKE-not-an-object", usageError, StringComparison.Ordinal);
        Assert.NotEqual(0, stale);
        Assert.Contains("FAILED_PRECONDITION", staleError, StringComparison.Ordinal);
        Assert.Contains("the current version is", staleError, StringComparison.Ordinal);
    }

    /// <summary>Through /bin/sh, so stdin can be redirected from a file.</summary>
    private Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(string arguments) =>
        ExternalProcess.RunAsync("/bin/sh", ["-c", $"'{RepositoryLayout.DotNet}' '{RepositoryLayout.BrokerCtlDll}' {arguments}"], new Dictionary<string, string?>
        {
            ["SECRETSBROKER_TOKEN"] = BrokerHost.TestToken,
            ["SECRETSBROKER_TOKEN_FILE"] = null,
            ["SECRETSBROKER_ADDRESS"] = _host.Address.ToString(),
        });
}
