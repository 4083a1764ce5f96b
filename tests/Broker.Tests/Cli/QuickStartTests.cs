using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>
/// README's quick start as a user runs it: the broker process on its embedded defaults (Development,
/// the repo's services/Broker content root with the demo file), then brokerctl with the demo token.
/// Every broker listens on port 0 and reports its port, and writes its audit spool to a folder of its own.
/// </summary>
[Trait("Category", "Integration")]
public sealed class QuickStartTests
{
    private static readonly string ContentRoot = Path.Combine(RepositoryLayout.Root, "services", "Broker");

    [Fact]
    public async Task The_broker_on_its_embedded_defaults_serves_the_demo_secret_to_brokerctl()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Development", directory);
        var address = await broker.WaitForListeningAddressAsync();

        var (exitCode, stdout, stderr) = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerCtlDll, "get", "demo/ml/training-db"],
            new Dictionary<string, string?>
            {
                ["SECRETSBROKER_ADDRESS"] = address.ToString(),
                ["SECRETSBROKER_TOKEN"] = "dev-only-token",
                ["SECRETSBROKER_TOKEN_FILE"] = null,
            });

        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("demo_trainer", json.RootElement.GetProperty("data").GetProperty("username").GetString());
        Assert.False(broker.HasExited);
    }

    [Fact]
    public async Task Outside_development_the_broker_refuses_dev_tokens_with_a_clear_message()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory,
            "--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml", "--Broker:Policy:File=policies.dev.yaml",
            $"--Broker:Audit:Key={BrokerHost.TestAuditKey}",
            "--Broker:Auth:DevTokens:Tokens:0:Subject=x", $"--Broker:Auth:DevTokens:Tokens:0:Sha256={new string('a', 64)}");

        await broker.WaitForOutputAsync(line => line.Contains("DevTokens are for development", StringComparison.Ordinal));
        Assert.NotEqual(0, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_mounts_the_broker_refuses_to_start_and_says_what_to_configure()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory);

        await broker.WaitForOutputAsync(line => line.Contains("configure at least one mount", StringComparison.Ordinal));
        Assert.Equal(1, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_policy_file_the_broker_refuses_to_start_and_says_why()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory,
            "--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml");

        await broker.WaitForOutputAsync(line => line.Contains("Broker:Policy:File is required", StringComparison.Ordinal));
        Assert.Equal(1, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    /// <summary>The broker process on port 0 (management too) with services/Broker as its content root and its audit spool in <paramref name="directory"/>.</summary>
    private static ExternalProcess StartBroker(string environment, TestDirectory directory, params string[] settings) =>
        ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", ContentRoot, "--urls", "http://127.0.0.1:0",
             // The management port (default 9464) is not what these tests are about: port 0 keeps parallel brokers apart.
             "--Broker:Management:Urls=http://127.0.0.1:0",
             $"--Broker:Audit:SpoolDirectory={Path.Combine(directory.Path, "audit-spool")}", .. settings],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = environment });
}
