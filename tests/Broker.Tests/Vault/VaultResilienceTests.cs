using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>Per-attempt timeouts and the circuit breaker, each against its own emulator so faults stay local.</summary>
[Trait("Category", "Integration")]
public sealed class VaultResilienceTests
{
    private const string Seed = """
        { "kv": { "secret": { "app/db": { "password": "FAKE-resilience-password" } } },
          "tokens": [ { "id": "FAKE-resilience-token", "policies": ["root"] } ] }
        """;

    private static Dictionary<string, string?> Configuration(VaultEmulatorHost vault)
    {
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-resilience-token",
        });
        configuration["Broker:Vault:Connections:default:MaxRetries"] = "0";
        return configuration;
    }

    [Fact]
    public async Task A_vault_slower_than_the_request_timeout_is_unavailable()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        var configuration = Configuration(vault);
        configuration["Broker:Vault:Connections:default:RequestTimeout"] = "00:00:01";
        await using var host = await BrokerHost.StartAsync(configuration);
        var client = host.CreateClient();
        // The token is looked up while Vault is fast. On a loaded CI machine the first (cold) call can itself pass the
        // timeout, so the warm-up is repeated until one call succeeds; the timeout under test comes after.
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                await client.GetSecretAsync("vault/app/db");
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        }, because: "a warm-up read succeeds while Vault is fast");
        vault.SetFaults("""{ "latency_ms": 3000 }""");

        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("vault did not answer in time", error.Status.Detail);
    }

    [Fact]
    public async Task Repeated_server_errors_open_the_circuit_and_calls_stop_reaching_vault()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        var configuration = Configuration(vault);
        configuration["Broker:Vault:Connections:default:CircuitMinimumThroughput"] = "3";
        configuration["Broker:Vault:Connections:default:CircuitFailureRatio"] = "0.5";
        configuration["Broker:Vault:Connections:default:CircuitBreakDuration"] = "00:01:00";
        await using var host = await BrokerHost.StartAsync(configuration);
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db");
        vault.SetFaults("""{ "error_count": 100, "error_status": 500 }""");

        var first = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));
        await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));
        var requestsWhenOpen = vault.Faults.Requests;
        var open = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, first.StatusCode);
        Assert.Equal("vault failed to answer (HTTP 500)", first.Status.Detail);
        Assert.Equal(StatusCode.Unavailable, open.StatusCode);
        Assert.Equal("vault is failing; the broker pauses calls to it briefly", open.Status.Detail);
        Assert.Equal(requestsWhenOpen, vault.Faults.Requests);
    }
}
