using Grpc.Core;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>Auth methods and engines mounted at non-default paths in Vault: Auth:MountPath and EnginePath are honoured.</summary>
[Trait("Category", "Integration")]
public sealed class VaultMountPathTests
{
    private const string Seed = """
        {
          "policies": { "broker": [
            { "path": "kv-prod/data/app/*", "capabilities": ["read"] },
            { "path": "kv-prod/metadata/*", "capabilities": ["list"] },
            { "path": "db-prod/creds/*", "capabilities": ["read"] },
            { "path": "sys/leases/revoke", "capabilities": ["update"] } ] },
          "kv": { "kv-prod": { "app/db": { "password": "FAKE-mount-path-password" }, "app/api": { "key": "FAKE-mount-path-key" } } },
          "secrets": { "db-prod": { "type": "database", "roles": { "readonly": { "default_ttl": "1h", "max_ttl": "2h" } } } },
          "auth": { "approle-prod": { "type": "approle", "roles": { "broker": {
            "role_id": "FAKE-prod-role", "secret_ids": ["FAKE-prod-secret"], "token_policies": ["broker"], "token_ttl": "1h" } } } }
        }
        """;

    [Fact]
    public async Task The_broker_logs_in_at_the_configured_auth_mount_and_uses_the_configured_engine_mounts()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
            ["Broker:Vault:Connections:default:Auth:MountPath"] = "approle-prod",
            ["Broker:Vault:Connections:default:Auth:RoleId"] = "FAKE-prod-role",
            ["Broker:Vault:Connections:default:Auth:SecretId"] = "FAKE-prod-secret",
        });
        configuration["Broker:Mounts:0:EnginePath"] = "kv-prod";
        configuration["Broker:Mounts:1:EnginePath"] = "db-prod";
        await using var host = await BrokerHost.StartAsync(configuration);
        var client = host.CreateClient();

        var secret = await client.GetSecretAsync("vault/app/db");
        var page = await client.ListSecretsPageAsync("vault/app");
        var lease = await client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/readonly" });
        var backend = Assert.IsType<VaultDynamicBackend>(host.Services.GetRequiredService<MountTable>().Resolve("db/readonly").Mounted.Backend);
        var renewed = await backend.RenewAsync(lease.LeaseId, TimeSpan.FromMinutes(10), CancellationToken.None);
        var foreign = await Assert.ThrowsAsync<BrokerException>(() => backend.RenewAsync("database/creds/readonly/FAKE", null, CancellationToken.None));

        Assert.Equal("FAKE-mount-path-password", secret.Data["password"]);
        Assert.Equal(["vault/app/api", "vault/app/db"], page.Secrets.Select(s => s.Path));
        Assert.StartsWith("db-prod/creds/readonly/", lease.LeaseId);
        Assert.Equal(TimeSpan.FromMinutes(10), renewed.Duration);
        Assert.Equal(BrokerErrorKind.NotFound, foreign.Kind);
        Assert.Equal(1, vault.Logins("approle"));
    }
}
