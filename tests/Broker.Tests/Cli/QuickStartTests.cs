using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>
/// README's quick start as a user runs it: the broker process on its embedded defaults (Development,
/// the repo's services/Broker content root with the demo file), then brokerctl with the demo token.
/// </summary>
public sealed class QuickStartTests
{
    [Fact]
    public async Task The_broker_on_its_embedded_defaults_serves_the_demo_secret_to_brokerctl()
    {
        var port = FreePort.Next();
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", $"http://127.0.0.1:{port}"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        await broker.WaitForOutputAsync(line => line.Contains("Now listening on"));

        var (exitCode, stdout, stderr) = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerCtlDll, "get", "demo/ml/training-db"],
            new Dictionary<string, string?>
            {
                ["SECRETSBROKER_ADDRESS"] = $"http://127.0.0.1:{port}",
                ["SECRETSBROKER_TOKEN"] = "dev-only-token",
                ["SECRETSBROKER_TOKEN_FILE"] = null,
            });

        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("demo_trainer", json.RootElement.GetProperty("data").GetProperty("username").GetString());
    }

    [Fact]
    public async Task Outside_development_the_broker_refuses_dev_tokens_with_a_clear_message()
    {
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml", "--Broker:Policy:File=policies.dev.yaml", $"--Broker:Audit:Key={BrokerHost.TestAuditKey}",
             "--Broker:Auth:DevTokens:Tokens:0:Subject=x", $"--Broker:Auth:DevTokens:Tokens:0:Sha256={new string('a', 64)}",
             $"--Broker:Audit:Key={BrokerHost.TestAuditKey}", "--Broker:Audit:SpoolDirectory=/tmp/secretsbroker-tests/quickstart-spool"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });

        await broker.WaitForOutputAsync(line => line.Contains("DevTokens are for development"));
    }

    [Fact]
    public async Task Without_mounts_the_broker_refuses_to_start_and_says_what_to_configure()
    {
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });

        await broker.WaitForOutputAsync(line => line.Contains("configure at least one mount"));
    }

    [Fact]
    public async Task Without_a_policy_file_the_broker_refuses_to_start_and_says_why()
    {
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });

        await broker.WaitForOutputAsync(line => line.Contains("Broker:Policy:File is required"));
    }
}
