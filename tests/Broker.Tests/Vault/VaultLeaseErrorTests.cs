using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// Vault's 400 answers to sys/leases/renew that mean the lease is gone (vault/expiration.go) are NOT_FOUND
/// for the lease, so a kept-alive lease is rotated, never INVALID_ARGUMENT.
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultLeaseErrorTests
{
    private const string Seed = """
        {
          "database": { "roles": { "readonly": { "default_ttl": "1h", "max_ttl": "2h" } } },
          "tokens": [ { "id": "FAKE-lease-token", "policies": ["root"] } ],
          "namespaces": { "team-a": { "tokens": [ { "id": "FAKE-team-a-lease-token", "policies": ["root"] } ] } }
        }
        """;

    private static Dictionary<string, string?> Configuration(VaultEmulatorHost vault)
    {
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-lease-token",
            ["Broker:Vault:Connections:team-a:Address"] = vault.Address.ToString(),
            ["Broker:Vault:Connections:team-a:Namespace"] = "team-a",
            ["Broker:Vault:Connections:team-a:Auth:Method"] = "token",
            ["Broker:Vault:Connections:team-a:Auth:Token"] = "FAKE-team-a-lease-token",
        });
        configuration["Broker:Mounts:2:Prefix"] = "team-a-db";
        configuration["Broker:Mounts:2:Type"] = "vault-dynamic";
        configuration["Broker:Mounts:2:Engine"] = "database";
        configuration["Broker:Mounts:2:Connection"] = "team-a";
        return configuration;
    }

    private static VaultDynamicBackend Backend(BrokerHost host, string path) =>
        Assert.IsType<VaultDynamicBackend>(host.Services.GetRequiredService<MountTable>().Resolve(path).Mounted.Backend);

    [Theory]
    [InlineData("pending_revocation")]
    [InlineData("irrevocable")]
    [InlineData(null)]
    public async Task Renewing_a_lease_vault_reports_as_expired_is_not_found(string? expiredLeases)
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, vaultTime);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));
        var backend = Backend(host, "db/readonly");
        var lease = await backend.IssueAsync("readonly", CancellationToken.None);
        vaultTime.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));
        vault.SetFaults($$"""{ "expired_leases": {{(expiredLeases is null ? "null" : $"\"{expiredLeases}\"")}} }""");

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.RenewAsync(lease.LeaseId, null, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.NotFound, error.Kind);
        Assert.Equal("the lease does not exist or has expired", error.Message);
    }

    [Fact]
    public async Task Renewing_a_lease_of_another_vault_namespace_is_not_found()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(Configuration(vault));
        var lease = await Backend(host, "db/readonly").IssueAsync("readonly", CancellationToken.None);

        var error = await Assert.ThrowsAsync<BrokerException>(() => Backend(host, "team-a-db/readonly").RenewAsync(lease.LeaseId, null, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.NotFound, error.Kind);
    }
}
