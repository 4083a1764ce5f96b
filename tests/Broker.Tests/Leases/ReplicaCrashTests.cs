using System.Diagnostics;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Leases;

/// <summary>
/// Leases survive a replica's crash: replica A is a real broker process killed with SIGKILL while it keeps two leases
/// alive; replica B shares its Redis. The lease whose client re-attaches to B lives on; the other is revoked after the
/// grace period, as if A's stream had ended normally (before replica heartbeats it lived on unrenewed until its TTL).
/// </summary>
[Trait("Category", "Integration")]
public sealed class ReplicaCrashTests
{
    [Fact]
    public async Task A_killed_replicas_leases_are_revoked_after_the_grace_period_unless_their_client_reattaches_to_a_survivor()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var grace = TimeSpan.FromSeconds(2);
        var settings = LeaseTestEnvironment.Broker(vault, redis, grace: "00:00:02");
        settings["Broker:Leases:ReplicaHeartbeat"] = "00:00:00.200";
        settings["Broker:Leases:ReplicaSilentAfter"] = "00:00:01";
        using var directoryA = new TestDirectory();
        await using var replicaA = await StartProcessAsync(settings, directoryA);
        await using var replicaB = await BrokerHost.StartAsync(settings);

        var (clientA, channelA) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = await replicaA.WaitForListeningAddressAsync(),
            Token = BrokerHost.TestToken,
            DefaultTimeout = TimeSpan.FromSeconds(30),
        });
        using var _ = channelA;

        var kept = await clientA.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        var abandoned = await clientA.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/steady" });
        var onA = await KeepAliveStream.OpenAsync(clientA.Raw, kept.LeaseId, abandoned.LeaseId);
        await Eventually.WaitUntilAsync(() => onA.OfType(LeaseEventType.Renewed).Select(e => e.LeaseId).Distinct().Count() == 2,
            TimeSpan.FromSeconds(30), "replica A renews both leases");

        replicaA.Kill();
        var sinceTheCrash = Stopwatch.StartNew();
        await onA.DisposeAsync();
        // The client of one lease reconnects to the survivor right away; nobody re-attaches the other.
        await using var onB = await KeepAliveStream.OpenAsync(replicaB.CreateClient().Raw, kept.LeaseId);
        await Eventually.WaitUntilAsync(() => onB.OfType(LeaseEventType.Attached).Any(), because: "replica B takes the kept lease over");

        await Eventually.WaitUntilAsync(() => LeaseTestEnvironment.LeaseState(vault, abandoned.LeaseId)?.Revoked == true, TimeSpan.FromSeconds(30),
            "the abandoned lease of the killed replica is revoked");
        Assert.True(sinceTheCrash.Elapsed >= grace, $"revoked {sinceTheCrash.Elapsed} after the crash, within the {grace} grace period");
        Assert.Contains(replicaB.Logs.Lines, m => m.Contains("leases wait the grace period", StringComparison.Ordinal));

        // The re-attached lease is renewed by B past the revocation of the other, and never revoked.
        var revokedAt = DateTimeOffset.UtcNow;
        await Eventually.WaitUntilAsync(() => onB.Events.Any(e => e.Event.Type == LeaseEventType.Renewed && e.Received > revokedAt),
            TimeSpan.FromSeconds(20), "replica B keeps renewing the re-attached lease");
        Assert.Equal((true, false), LeaseTestEnvironment.LeaseState(vault, kept.LeaseId));
        Assert.DoesNotContain(onB.Events, e => e.Event.Type is LeaseEventType.Revoked or LeaseEventType.Expired or LeaseEventType.Error);
    }

    /// <summary>The broker as its own process, with the settings of an in-process <see cref="BrokerHost"/>.</summary>
    private static async Task<ExternalProcess> StartProcessAsync(IReadOnlyDictionary<string, string?> settings, TestDirectory directory)
    {
        directory.WriteFile("policy.yaml", BrokerHost.AllowTestAlphaEverything);
        var defaults = new Dictionary<string, string?>
        {
            ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
            ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "test-alpha",
            ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = BrokerHost.Sha256Hex(BrokerHost.TestToken),
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Audit:Key"] = BrokerHost.TestAuditKey,
            ["Broker:Audit:SpoolDirectory"] = "audit-spool",
            ["Broker:Management:Urls"] = "http://127.0.0.1:0",
        };
        var arguments = new List<string> { RepositoryLayout.BrokerDll, "--contentRoot", directory.Path, "--urls", "http://127.0.0.1:0" };
        arguments.AddRange(defaults.Concat(settings).Select(setting => $"--{setting.Key}={setting.Value}"));
        var process = ExternalProcess.Start(RepositoryLayout.DotNet, arguments, new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        await process.WaitForListeningAddressAsync();
        return process;
    }
}
