using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// A 403 on a secret is a policy decision unless Vault says the token is invalid; tokens without Vault's
/// default policy (token_no_default_policy) cannot call lookup-self, and the broker copes with that.
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultTokenHealthTests
{
    private const string Seed = """
        {
          "policies": { "broker": [ { "path": "secret/data/app/*", "capabilities": ["read"] } ] },
          "kv": { "secret": { "app/db": { "password": "FAKE-health-password" }, "team-b/db": { "password": "FAKE-team-b-password" } } },
          "auth": { "approle": { "roles": {
            "no-default": { "role_id": "FAKE-no-default-role", "secret_ids": ["FAKE-no-default-secret"], "token_policies": ["broker"],
                            "token_no_default_policy": true, "token_ttl": "1h", "token_max_ttl": "2h" },
            "with-default": { "role_id": "FAKE-default-role", "secret_ids": ["FAKE-default-secret"], "token_policies": ["broker"],
                              "token_ttl": "1h", "token_max_ttl": "2h" } } } },
          "tokens": [ { "id": "FAKE-no-default-token", "policies": ["broker"], "ttl": "768h", "no_default_policy": true } ]
        }
        """;

    private static Dictionary<string, string?> AppRole(Uri vault, string role) => VaultFixture.BrokerConfiguration(vault, new Dictionary<string, string?>
    {
        ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
        ["Broker:Vault:Connections:default:Auth:RoleId"] = $"FAKE-{role}-role",
        ["Broker:Vault:Connections:default:Auth:SecretId"] = $"FAKE-{role}-secret",
    });

    private static Action<WebApplicationBuilder> UseClock(TimeProvider time) => builder => builder.Services.AddSingleton(time);

    [Fact]
    public async Task Policy_denials_with_a_token_that_cannot_look_itself_up_do_not_trigger_new_logins()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(AppRole(vault.Address, "no-default"));
        var client = host.CreateClient();

        var allowed = await client.GetSecretAsync("vault/app/db");
        var denied = new List<RpcException>();
        for (var i = 0; i < 3; i++)
        {
            denied.Add(await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/team-b/db")));
        }

        Assert.Equal("FAKE-health-password", allowed.Data["password"]);
        Assert.All(denied, e => Assert.Equal(StatusCode.PermissionDenied, e.StatusCode));
        Assert.Equal(1, vault.Logins("approle"));
    }

    [Fact]
    public async Task Policy_denials_with_a_token_that_can_look_itself_up_do_not_trigger_new_logins_either()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(AppRole(vault.Address, "default"));
        var client = host.CreateClient();

        await client.GetSecretAsync("vault/app/db");
        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/team-b/db"));
        }

        Assert.Equal(1, vault.Logins("approle"));
    }

    [Fact]
    public async Task A_configured_token_without_the_default_policy_is_used_although_it_cannot_look_itself_up()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-no-default-token",
        }));
        var client = host.CreateClient();

        var secret = await client.GetSecretAsync("vault/app/db");
        var denied = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/team-b/db"));

        Assert.Equal("FAKE-health-password", secret.Data["password"]);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    [Fact]
    public async Task A_token_vault_calls_invalid_is_replaced_once_although_it_cannot_look_itself_up()
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, vaultTime);
        await using var host = await BrokerHost.StartAsync(AppRole(vault.Address, "no-default"), configureServices: UseClock(new FakeTimeProvider(vaultTime.GetUtcNow())));
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db");

        vaultTime.Advance(TimeSpan.FromHours(1.5)); // Vault's clock runs ahead: the broker's token expired there
        var secret = await client.GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-health-password", secret.Data["password"]);
        Assert.Equal(2, vault.Logins("approle"));
    }

    [Fact]
    public async Task Against_vault_before_1_17_a_dead_token_that_can_look_itself_up_is_found_out_by_lookup_self()
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, vaultTime);
        vault.SetFaults("""{ "token_errors_before_1_17": true }""");
        await using var host = await BrokerHost.StartAsync(AppRole(vault.Address, "default"), configureServices: UseClock(new FakeTimeProvider(vaultTime.GetUtcNow())));
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db");

        vaultTime.Advance(TimeSpan.FromHours(1.5));
        var secret = await client.GetSecretAsync("vault/app/db");
        var denied = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/team-b/db"));

        Assert.Equal("FAKE-health-password", secret.Data["password"]);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal(2, vault.Logins("approle"));
    }
}
