using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>brokerctl's issue, revoke, lease and watch as real processes against a real broker (Vault emulator for dynamic credentials).</summary>
[Trait("Category", "Integration")]
public sealed class BrokerCtlLeaseTests
{
    [Fact]
    public async Task Issue_prints_the_lease_and_revoke_revokes_it_in_vault()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));

        var (exitCode, stdout, stderr) = await RunAsync(broker, ["issue", "db/steady", "--compact"]);
        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var leaseId = json.RootElement.GetProperty("leaseId").GetString()!;
        Assert.NotEmpty(json.RootElement.GetProperty("credentials").GetProperty("username").GetString()!);
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, leaseId));

        (exitCode, _, stderr) = await RunAsync(broker, ["revoke", leaseId]);
        Assert.True(exitCode == 0, stderr);
        Assert.Equal(true, LeaseTestEnvironment.LeaseState(vault, leaseId)?.Revoked);
    }

    [Fact]
    public async Task Lease_runs_the_command_with_the_credentials_revokes_at_exit_and_passes_on_its_exit_code()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));

        var (exitCode, stdout, stderr) = await RunAsync(broker,
            ["lease", "db/steady", "--", "sh", "-c", "echo \"user=$SECRETSBROKER_CRED_USERNAME\"; test -n \"$SECRETSBROKER_CRED_PASSWORD\" || exit 99; exit 7"]);

        Assert.True(exitCode == 7, $"exit {exitCode}: {stderr}");
        var lease = Assert.Single(vault.State.DescribeLeases());
        Assert.Contains($"user={lease!["credential"]!.GetValue<string>()}", stdout);
        Assert.Equal(true, LeaseTestEnvironment.LeaseState(vault, lease["lease_id"]!.GetValue<string>())?.Revoked);
    }

    [Fact]
    public async Task Lease_stops_the_command_when_its_lease_is_revoked_and_exits_124()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        await using var brokerctl = Start(broker, ["lease", "db/steady", "--kill-after", "5", "--", "sh", "-c", "echo \"pid=$$\"; exec sleep 300"]);
        var pid = int.Parse((await brokerctl.WaitForOutputAsync(line => line.StartsWith("pid=", StringComparison.Ordinal)))[4..],
            System.Globalization.CultureInfo.InvariantCulture);
        var leaseId = Assert.Single(vault.State.DescribeLeases())!["lease_id"]!.GetValue<string>();

        await broker.CreateClient().Raw.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = leaseId });

        var exitCode = await brokerctl.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 124, $"exit {exitCode}: {string.Join('\n', brokerctl.Output)}");
        Assert.Contains(brokerctl.Output, line => line.Contains("LEASE_LOST", StringComparison.Ordinal));
        Assert.False(Directory.Exists($"/proc/{pid}"), "the command is still running");
        // Whatever the keeper issued after the revocation is revoked too.
        await Eventually.WaitUntilAsync(() => vault.State.DescribeLeases().All(l => l!["revoked"]!.GetValue<bool>()), TimeSpan.FromSeconds(10),
            "every lease brokerctl held is revoked");
    }

    [Fact]
    public async Task A_command_that_does_not_exist_exits_127_and_the_lease_is_revoked()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));

        var (exitCode, _, stderr) = await RunAsync(broker, ["lease", "db/steady", "--", "/nonexistent/command"]);

        Assert.True(exitCode == 127, $"exit {exitCode}: {stderr}");
        Assert.Contains("COMMAND_NOT_FOUND", stderr);
        Assert.All(vault.State.DescribeLeases(), l => Assert.True(l!["revoked"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task Watch_prints_a_json_line_when_a_local_secret_gets_a_new_version()
    {
        using var directory = new TestDirectory();
        directory.WriteFile("team.yaml", Versions(2));
        await using var broker = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "team",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "team.yaml",
            ["Broker:Watch:PollInterval"] = "00:00:00.200",
        }, directory);
        await using var brokerctl = Start(broker, ["watch", "team/app/db", "--count", "1"]);

        // The watch is in place once its stream opened, which the test cannot see: publish versions until one is reported.
        var versions = 2;
        bool Reported() => brokerctl.HasExited || brokerctl.Output.Count > 0;
        await Eventually.WaitUntilAsync(async () =>
        {
            directory.WriteFile("team.yaml", Versions(++versions));
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!Reported() && waited.Elapsed < TimeSpan.FromSeconds(1))
            {
                await Task.Delay(25);
            }
            return Reported();
        }, TimeSpan.FromSeconds(30), "a version is reported");

        Assert.Equal(0, await brokerctl.WaitForExitAsync());
        using var json = JsonDocument.Parse(Assert.Single(brokerctl.Output));
        Assert.Equal("team/app/db", json.RootElement.GetProperty("path").GetString());
        Assert.InRange(int.Parse(json.RootElement.GetProperty("version").GetString()!, System.Globalization.CultureInfo.InvariantCulture), 3, versions);
    }

    private static string Versions(int count) =>
        "secrets:\n  app/db:\n    versions:\n" + string.Concat(Enumerable.Range(1, count).Select(i => $"      - data: {{ password: FAKE-watch-v{i} }}\n"));

    private static Dictionary<string, string?> Environment(BrokerHost broker) => new()
    {
        ["SECRETSBROKER_TOKEN"] = BrokerHost.TestToken,
        ["SECRETSBROKER_TOKEN_FILE"] = null,
        ["SECRETSBROKER_ADDRESS"] = broker.Address.ToString(),
    };

    private static Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(BrokerHost broker, string[] arguments) =>
        ExternalProcess.RunAsync(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], Environment(broker));

    private static ExternalProcess Start(BrokerHost broker, string[] arguments) =>
        ExternalProcess.Start(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], Environment(broker));
}
