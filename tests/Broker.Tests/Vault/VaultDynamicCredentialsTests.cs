using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// Issuing dynamic credentials mints a new database user or AWS key on every call that reaches Vault, so
/// it must not be retried once Vault may have acted, and credentials the caller will not receive are
/// revoked. Each test counts the leases Vault holds for the role.
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultDynamicCredentialsTests
{
    private const string Seed = """
        {
          "policies": { "broker": [
            { "path": "database/creds/*", "capabilities": ["read"] },
            { "path": "aws/sts/*", "capabilities": ["update"] },
            { "path": "sys/leases/revoke", "capabilities": ["update"] } ] },
          "database": { "roles": { "readonly": { "default_ttl": "1h", "max_ttl": "2h" } } },
          "aws": { "roles": { "assume": { "credential_type": "assumed_role", "default_sts_ttl": 900, "max_sts_ttl": 3600 } } },
          "tokens": [ { "id": "FAKE-dynamic-token", "policies": ["broker"], "ttl": "768h" } ]
        }
        """;

    private static Dictionary<string, string?> Configuration(VaultEmulatorHost vault)
    {
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-dynamic-token",
        });
        configuration["Broker:Mounts:2:Prefix"] = "aws-sts";
        configuration["Broker:Mounts:2:Type"] = "vault-dynamic";
        configuration["Broker:Mounts:2:Engine"] = "aws";
        configuration["Broker:Mounts:2:CredentialEndpoint"] = "sts";
        configuration["Broker:Mounts:2:StsTtl"] = "00:30:00";
        return configuration;
    }

    /// <summary>(live, revoked) of every lease Vault issued under <paramref name="prefix"/>.</summary>
    private static List<(bool Live, bool Revoked)> Leases(VaultEmulatorHost vault, string prefix) =>
        [.. vault.State.DescribeLeases()
            .Where(l => l!["lease_id"]!.GetValue<string>().StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => (l!["live"]!.GetValue<bool>(), l["revoked"]!.GetValue<bool>()))];

    [Theory]
    [InlineData(0)]
    [InlineData(502)]
    public async Task A_credential_request_whose_answer_is_lost_after_vault_minted_it_is_not_sent_again(int lostStatus)
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));
        var client = host.CreateClient().Raw;
        vault.SetFaults($$"""{ "lost_response_count": 1, "lost_response_status": {{lostStatus}}, "path_prefix": "database/creds/" }""");

        var error = await Assert.ThrowsAsync<RpcException>(() => client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/readonly" }).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        // Vault minted one user and the broker never learnt its lease id; a retry would have minted a second.
        Assert.Single(Leases(vault, "database/creds/readonly/"));
        Assert.Equal(1, vault.Faults.LostResponses);
    }

    [Fact]
    public async Task Issuing_is_retried_when_vault_refused_the_request_before_acting_and_mints_once()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));
        vault.SetFaults("""{ "rate_limit_count": 2, "path_prefix": "database/creds/" }""");

        var lease = await host.CreateClient().Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/readonly" });

        Assert.StartsWith("database/creds/readonly/", lease.LeaseId);
        Assert.Equal(2, vault.Faults.RateLimited);
        Assert.Equal([(true, false)], Leases(vault, "database/creds/readonly/"));
    }

    [Fact]
    public async Task Credentials_vault_minted_for_a_caller_that_gave_up_are_revoked()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));
        var client = host.CreateClient().Raw;
        await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/readonly" }); // the broker's token is looked up
        vault.SetFaults("""{ "latency_after_ms": 1500, "path_prefix": "database/creds/" }""");

        var error = await Assert.ThrowsAsync<RpcException>(() => client.IssueCredentialsAsync(
            new IssueCredentialsRequest { Path = "db/readonly" }, deadline: DateTime.UtcNow.AddMilliseconds(300)).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        await Eventually.WaitUntilAsync(() => Leases(vault, "database/creds/readonly/").Count(l => l.Revoked) == 1, TimeSpan.FromSeconds(15),
            "the lease minted after the caller gave up is revoked in vault");
        Assert.Equal([(true, false), (false, true)], Leases(vault, "database/creds/readonly/"));
    }

    [Fact]
    public async Task Sts_credentials_are_issued_for_the_mounts_ttl()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));

        var lease = await host.CreateClient().Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "aws-sts/assume" });

        Assert.StartsWith("aws/sts/assume/", lease.LeaseId);
        Assert.False(lease.Renewable);
        Assert.Equal(TimeSpan.FromMinutes(30), lease.Ttl.ToTimeSpan());
    }

    [Fact]
    public async Task An_sts_ttl_under_the_sts_minimum_of_fifteen_minutes_stops_the_broker_with_a_clear_message()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        var configuration = Configuration(vault);
        configuration["Broker:Mounts:2:StsTtl"] = "00:05:00";

        var error = await Assert.ThrowsAnyAsync<Exception>(async () => await (await BrokerHost.StartAsync(configuration)).DisposeAsync());

        Assert.Contains("'StsTtl' must be between 15 minutes", error.ToString(), StringComparison.Ordinal);
    }
}
