using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// AppRole secret_ids with secret_id_num_uses / secret_id_ttl are used up or expire; the platform then
/// writes a new one to the broker's SecretIdFile. The broker says which credential Vault refused (never
/// its value), in its answer, its log, its readiness and a metric, and picks up the new file.
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultSecretIdTests
{
    private const string FirstSecretId = "FAKE-secret-id-first";

    private const string Seed = $$"""
        {
          "policies": { "broker": [ { "path": "secret/data/app/*", "capabilities": ["read"] } ] },
          "kv": { "secret": { "app/db": { "password": "FAKE-secret-id-password" } } },
          "auth": { "approle": { "roles": { "broker": {
            "role_id": "FAKE-role-id", "secret_id_num_uses": 1, "secret_ids": ["{{FirstSecretId}}"],
            "token_policies": ["broker"], "token_ttl": "30s", "token_max_ttl": "30s" } } } }
        }
        """;

    [Fact]
    public async Task A_used_up_secret_id_is_reported_without_its_value_and_a_new_one_in_the_file_is_picked_up()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, time);
        using var directory = new TestDirectory();
        var secretIdFile = directory.WriteFile("secret-id", FirstSecretId);
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
            ["Broker:Vault:Connections:default:Auth:RoleId"] = "FAKE-role-id",
            ["Broker:Vault:Connections:default:Auth:SecretIdFile"] = secretIdFile,
        });
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        await using var host = await BrokerHost.StartAsync(configuration, configureServices: builder => builder.Services.AddSingleton<TimeProvider>(time));
        var client = host.CreateClient();
        await client.GetSecretAsync("vault/app/db"); // the only use of the first secret_id

        time.Advance(TimeSpan.FromSeconds(31)); // the token reached its max TTL; a new login is refused
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("AppRole secret_id from Auth:SecretIdFile", refused.Status.Detail, StringComparison.Ordinal);
        var (status, body) = await host.GetAsync("/healthz/ready");
        Assert.Equal(503, status);
        Assert.Contains("AppRole secret_id from Auth:SecretIdFile", body, StringComparison.Ordinal);
        var samples = ManagementPort.Parse(await host.ScrapeAsync());
        Assert.Equal(1, samples.Sum("secretsbroker_vault_credential_refused", ("connection", "default"), ("method", "approle")));
        Assert.True(samples.Sum("secretsbroker_vault_logins_total", ("connection", "default"), ("outcome", "refused")) >= 1);
        Assert.Contains(host.Logs.Lines, line => line.Contains("secret_id", StringComparison.Ordinal) && line.Contains("refused", StringComparison.Ordinal));
        host.Logs.AssertNoneContain([FirstSecretId]);

        // The platform issues a new secret_id and writes it to the file.
        File.WriteAllText(secretIdFile, await NewSecretIdAsync(vault));
        var secret = await client.GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-secret-id-password", secret.Data["password"]);
        Assert.Equal(2, vault.Logins("approle"));
        Assert.Equal(200, (await host.GetAsync("/healthz/ready")).Status);
        await Eventually.WaitUntilAsync(async () => ManagementPort.Parse(await host.ScrapeAsync())
            .Sum("secretsbroker_vault_credential_refused", ("connection", "default"), ("method", "approle")) == 0, TimeSpan.FromSeconds(15),
            "the refused-credential gauge drops to 0 (the exporter may serve a cached scrape for a moment)");
    }

    [Fact]
    public async Task Without_traffic_readiness_recovers_once_the_platform_replaced_the_secret_id()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, time);
        using var directory = new TestDirectory();
        var secretIdFile = directory.WriteFile("secret-id", FirstSecretId);
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "approle",
            ["Broker:Vault:Connections:default:Auth:RoleId"] = "FAKE-role-id",
            ["Broker:Vault:Connections:default:Auth:SecretIdFile"] = secretIdFile,
        });
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        await using var host = await BrokerHost.StartAsync(configuration, configureServices: builder => builder.Services.AddSingleton<TimeProvider>(time));
        await host.CreateClient().GetSecretAsync("vault/app/db");
        time.Advance(TimeSpan.FromSeconds(31));
        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Status == 503, TimeSpan.FromSeconds(15),
            "readiness goes down while vault refuses the login");

        File.WriteAllText(secretIdFile, await NewSecretIdAsync(vault));

        await Eventually.WaitUntilAsync(async () => (await host.GetAsync("/healthz/ready")).Status == 200, TimeSpan.FromSeconds(15),
            "readiness recovers through the probe's own login with the new secret_id");
        Assert.Equal(2, vault.Logins("approle"));
    }

    /// <summary>auth/approle/role/broker/secret-id, called the way a platform's provisioning job would.</summary>
    private static async Task<string> NewSecretIdAsync(VaultEmulatorHost vault)
    {
        using var http = new HttpClient { BaseAddress = vault.Address };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/auth/approle/role/broker/secret-id") { Content = JsonContent.Create(new JsonObject()) };
        request.Headers.Add("X-Vault-Token", VaultEmulatorHost.RootToken);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["data"]!["secret_id"]!.GetValue<string>();
    }
}
