using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// The broker's own Vault login: renewal, re-login and the login methods. Clocks are FakeTimeProviders
/// (shared by the emulator and the broker unless a test skews them on purpose), so token TTLs pass
/// without waiting.
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultAuthTests
{
    private const string RoleId = "FAKE-role-id";
    private const string SecretId = "FAKE-secret-id";

    private static string Seed(string authJson) => $$"""
        {
          "policies": { "broker": [ { "path": "secret/data/app/*", "capabilities": ["read"] } ] },
          "kv": { "secret": { "app/db": { "password": "FAKE-auth-password" } } },
          "auth": {{authJson}},
          "namespaces": {
            "team-a": {
              "policies": { "reader": [ { "path": "secret/data/*", "capabilities": ["read"] } ] },
              "kv": { "secret": { "app/db": { "password": "FAKE-team-a-password" } } },
              "tokens": [ { "id": "FAKE-team-a-token", "policies": ["reader"], "ttl": "768h" } ]
            }
          }
        }
        """;

    private static readonly string AppRoleAuth = $$"""
        { "approle": { "roles": { "broker": { "role_id": "{{RoleId}}", "secret_ids": ["{{SecretId}}"],
          "token_policies": ["broker"], "token_ttl": "30s", "token_max_ttl": "90s" } } } }
        """;

    private static Dictionary<string, string?> AppRoleConfiguration(Uri vault) => VaultFixture.BrokerConfiguration(vault, new Dictionary<string, string?>
    {
        ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
        ["Broker:Vault:Connections:default:Auth:RoleId"] = RoleId,
        ["Broker:Vault:Connections:default:Auth:SecretId"] = SecretId,
    });

    private static Action<WebApplicationBuilder> UseClock(TimeProvider time) => builder => builder.Services.AddSingleton(time);

    private static VaultTokenSource Tokens(BrokerHost host) => host.Services.GetRequiredService<VaultConnections>().Get("default").Tokens;

    [Fact]
    public async Task Tokens_are_renewed_and_replaced_by_new_logins_during_a_stream_of_reads_with_no_failed_read()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(AppRoleAuth), time);
        await using var host = await BrokerHost.StartAsync(AppRoleConfiguration(vault.Address), configureServices: UseClock(time));
        var client = host.CreateClient();

        var failures = new List<string>();
        for (var second = 0; second < 300; second++)
        {
            try
            {
                var secret = await client.GetSecretAsync("vault/app/db");
                Assert.Equal("FAKE-auth-password", secret.Data["password"]);
            }
            catch (RpcException ex)
            {
                failures.Add($"{second}s: {ex.StatusCode} {ex.Status.Detail}");
            }
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Empty(failures);
        // 300 s with a 30 s TTL and a 90 s max TTL: renewals in between, and a new login about every 80 s.
        Assert.InRange(vault.Logins("approle"), 4, 6);
        Assert.True(Tokens(host).RenewalCount >= 8, $"renewals: {Tokens(host).RenewalCount}");
    }

    [Fact]
    public async Task A_refused_renewal_is_followed_by_a_new_login_without_a_failed_read()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(AppRoleAuth), time);
        await using var host = await BrokerHost.StartAsync(AppRoleConfiguration(vault.Address), configureServices: UseClock(time));
        var client = host.CreateClient();
        vault.SetFaults("""{ "renew_self_refused": true }""");

        for (var second = 0; second < 70; second++)
        {
            await client.GetSecretAsync("vault/app/db");
            time.Advance(TimeSpan.FromSeconds(1));
        }

        // Renewal is due at 20 s and refused, so every token is replaced by a login at two thirds of its TTL.
        Assert.InRange(vault.Logins("approle"), 3, 5);
        Assert.Equal(0, Tokens(host).RenewalCount);
    }

    [Fact]
    public async Task A_token_that_vault_already_expired_is_replaced_and_the_read_retried()
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var brokerTime = new FakeTimeProvider(vaultTime.GetUtcNow());
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(AppRoleAuth), vaultTime);
        await using var host = await BrokerHost.StartAsync(AppRoleConfiguration(vault.Address), configureServices: UseClock(brokerTime));
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db");

        vaultTime.Advance(TimeSpan.FromSeconds(31)); // Vault's clock runs ahead: the broker's token is gone there
        var secret = await client.GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-auth-password", secret.Data["password"]);
        Assert.Equal(2, vault.Logins("approle"));
    }

    [Fact]
    public async Task A_configured_token_that_vault_no_longer_accepts_makes_reads_unavailable_not_denied()
    {
        var vaultTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var seed = Seed("{}").Replace("\"auth\": {}", "\"auth\": {}, \"tokens\": [ { \"id\": \"FAKE-short-token\", \"policies\": [\"broker\"], \"ttl\": \"60s\", \"renewable\": false } ]",
            StringComparison.Ordinal);
        await using var vault = await VaultEmulatorHost.StartAsync(seed, vaultTime);
        await using var host = await BrokerHost.StartAsync(VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-short-token",
        }), configureServices: UseClock(new FakeTimeProvider(vaultTime.GetUtcNow())));
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db");

        vaultTime.Advance(TimeSpan.FromSeconds(61));
        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("vault no longer accepts the broker's configured token", error.Status.Detail);
    }

    [Fact]
    public async Task A_wrong_approle_secret_makes_reads_unavailable_without_revealing_it()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(AppRoleAuth));
        var configuration = AppRoleConfiguration(vault.Address);
        configuration["Broker:Vault:Connections:default:Auth:SecretId"] = "FAKE-wrong-secret-id";
        await using var host = await BrokerHost.StartAsync(configuration);

        var error = await Assert.ThrowsAsync<RpcException>(() => host.CreateClient().GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.DoesNotContain("FAKE", error.Status.Detail);
        host.Logs.AssertNoneContain(["FAKE-wrong-secret-id", "FAKE-auth-password", "app/db"]);
    }

    [Fact]
    public async Task The_broker_logs_in_with_a_kubernetes_service_account_token_read_from_a_file()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var auth = $$"""
            { "kubernetes": { "pem_keys": [ {{System.Text.Json.JsonSerializer.Serialize(key.ExportSubjectPublicKeyInfoPem())}} ],
              "roles": { "broker": { "bound_service_account_names": ["broker"], "bound_service_account_namespaces": ["secrets"],
                                     "token_policies": ["broker"], "token_ttl": "1h" } } } }
            """;
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(auth));
        var directory = new TestDirectory();
        directory.WriteFile("sa-token", SignJwt(key, """{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:secrets:broker"}"""));
        await using var host = await BrokerHost.StartAsync(VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "kubernetes",
            ["Broker:Vault:Connections:default:Auth:Role"] = "broker",
            ["Broker:Vault:Connections:default:Auth:JwtFile"] = Path.Combine(directory.Path, "sa-token"),
        }), directory);

        var secret = await host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-auth-password", secret.Data["password"]);
        Assert.Equal(1, vault.Logins("kubernetes"));
    }

    [Fact]
    public async Task The_broker_logs_in_with_a_jwt()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var auth = $$"""
            { "jwt": { "jwt_validation_pubkeys": [ {{System.Text.Json.JsonSerializer.Serialize(key.ExportSubjectPublicKeyInfoPem())}} ],
              "bound_issuer": "https://issuer.test",
              "roles": { "broker": { "bound_audiences": ["vault"], "user_claim": "sub", "token_policies": ["broker"], "token_ttl": "1h" } } } }
            """;
        await using var vault = await VaultEmulatorHost.StartAsync(Seed(auth));
        await using var host = await BrokerHost.StartAsync(VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "jwt",
            ["Broker:Vault:Connections:default:Auth:Role"] = "broker",
            ["Broker:Vault:Connections:default:Auth:Jwt"] = SignJwt(key, """{"iss":"https://issuer.test","aud":"vault","sub":"secrets-broker"}"""),
        }));

        var secret = await host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-auth-password", secret.Data["password"]);
        Assert.Equal(1, vault.Logins("jwt"));
    }

    [Fact]
    public async Task Calls_go_to_the_configured_vault_namespace()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(Seed("{}"));
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Namespace"] = "team-a",
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-team-a-token",
        });
        await using var host = await BrokerHost.StartAsync(configuration);

        var secret = await host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-team-a-password", secret.Data["password"]);
    }

    [Fact]
    public async Task An_invalid_vault_connection_stops_the_broker_with_a_clear_message()
    {
        var configuration = VaultFixture.BrokerConfiguration(new Uri("http://127.0.0.1:1"), new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
        });
        configuration["Broker:Vault:Connections:default:Address"] = "not-a-url";

        var error = await Assert.ThrowsAnyAsync<Exception>(() => BrokerHost.StartAsync(configuration));

        Assert.Contains("Address must be an absolute http or https address", error.ToString());
        Assert.Contains("RoleId is required for approle", error.ToString());
    }

    private static string SignJwt(ECDsa key, string claimsJson)
    {
        static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = claimsJson.TrimEnd('}') + $",\"iat\":{now},\"exp\":{now + 3600}}}";
        var signingInput = B64(Encoding.UTF8.GetBytes("""{"alg":"ES256","typ":"JWT"}""")) + "." + B64(Encoding.UTF8.GetBytes(claims));
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + B64(signature);
    }
}
