using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// Vault's sys/health needs no token, so it cannot tell that the broker's own token is refused; readiness also
/// reflects the outcome of the token's lookup-self, renew-self and login. The emulator answers an unknown or
/// expired token with 403 "permission denied" + "invalid token" (Vault 1.17+, vault/request_handling.go
/// checkToken, hashicorp/vault#25953).
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultTokenReadinessTests
{
    private const string Seed = """
        {
          "policies": { "broker": [ { "path": "secret/data/app/*", "capabilities": ["read"] } ] },
          "kv": { "secret": { "app/db": { "password": "FAKE-readiness-password" } } },
          "tokens": [ { "id": "FAKE-readiness-token", "policies": ["broker"], "ttl": "60s", "renewable": false } ]
        }
        """;

    private static Dictionary<string, string?> WithToken(Uri vault, string token)
    {
        var configuration = VaultFixture.BrokerConfiguration(vault, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = token,
        });
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        return configuration;
    }

    [Fact]
    public async Task A_configured_token_vault_does_not_accept_makes_its_mounts_not_ready_with_the_reason()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        await using var host = await BrokerHost.StartAsync(WithToken(vault.Address, "FAKE-wrong-broker-token"));
        var health = HealthTests.HealthClient(host);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await HealthTests.StatusAsync(health, "readiness"));
        var (status, body) = await host.GetAsync("/healthz/ready");
        Assert.Equal(503, status);
        Assert.Contains("vault connection 'default'", body, StringComparison.Ordinal);
        Assert.Contains("does not accept the broker's configured token", body, StringComparison.Ordinal);
        Assert.DoesNotContain("FAKE-wrong-broker-token", body, StringComparison.Ordinal);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await HealthTests.StatusAsync(health, ""));
        host.Logs.AssertNoneContain(["FAKE-wrong-broker-token"]);
    }

    [Fact]
    public async Task A_token_vault_stops_accepting_at_run_time_makes_its_mounts_not_ready()
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, vaultTime);
        await using var host = await BrokerHost.StartAsync(WithToken(vault.Address, "FAKE-readiness-token"),
            configureServices: builder => builder.Services.AddSingleton<TimeProvider>(new FakeTimeProvider(vaultTime.GetUtcNow())));
        var client = host.CreateClient();
        var health = HealthTests.HealthClient(host);
        await client.GetSecretAsync("vault/app/db");
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await HealthTests.StatusAsync(health, "readiness"));

        vaultTime.Advance(TimeSpan.FromSeconds(61)); // the token expired in Vault; the broker's clock does not know
        var failed = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await HealthTests.StatusAsync(health, "readiness"));
        var (_, body) = await host.GetAsync("/healthz/ready");
        Assert.Contains("vault connection 'default'", body, StringComparison.Ordinal);
        Assert.Contains("configured token", body, StringComparison.Ordinal);
        Assert.DoesNotContain("FAKE-readiness-token", body, StringComparison.Ordinal);
    }
}
