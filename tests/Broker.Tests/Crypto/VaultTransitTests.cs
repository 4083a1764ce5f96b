using System.Net.Http.Json;
using System.Text;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>
/// The Vault emulator's transit engine (checked against hvac by tests/python/vault_conformance_transit.py) behind a
/// <c>vault-transit</c> mount <c>transit</c>, reached with a token whose policy is the one docs/encryption.md gives.
/// </summary>
public sealed class VaultTransitFixture : IKeyStoreFixture, IAsyncLifetime
{
    public const string BrokerToken = "FAKE-transit-broker-token";

    private const string Seed = """
        {
          "policies": {
            "broker-transit": [
              { "path": "transit/encrypt/*", "capabilities": ["update"] },
              { "path": "transit/decrypt/*", "capabilities": ["update"] },
              { "path": "transit/datakey/plaintext/*", "capabilities": ["update"] },
              { "path": "transit/rewrap/*", "capabilities": ["update"] },
              { "path": "transit/keys/*", "capabilities": ["read"] }
            ]
          },
          "secrets": { "transit": { "type": "transit" } },
          "tokens": [ { "id": "FAKE-transit-broker-token", "policies": ["broker-transit"], "ttl": "768h" } ]
        }
        """;

    private readonly HttpClient _http = new();

    public VaultEmulatorHost Vault { get; private set; } = null!;

    public BrokerHost Host { get; private set; } = null!;

    public string KeyPath => "transit/app";

    public bool NumberedVersions => true;

    public async Task InitializeAsync()
    {
        Vault = await VaultEmulatorHost.StartAsync(Seed);
        await RootAsync("transit/keys/app", new { derived = true });
        await RootAsync("transit/keys/other", new { derived = true });
        await RootAsync("transit/keys/not-derived", new { });
        var configuration = VaultFixture.BrokerConfiguration(Vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = BrokerToken,
        });
        configuration["Broker:Mounts:2:Prefix"] = "transit";
        configuration["Broker:Mounts:2:Type"] = "vault-transit";
        configuration["Broker:Mounts:2:EnginePath"] = "transit";
        configuration["Broker:Policy:File"] = "crypto-policy.yaml";
        var directory = new TestDirectory();
        directory.WriteFile("crypto-policy.yaml", CryptoCalls.AllowCryptoPolicy);
        Host = await BrokerHost.StartAsync(configuration, directory);
    }

    public Task RotateAsync() => RootAsync("transit/keys/app/rotate", new { });

    public Task SetMinDecryptionVersionAsync(int version) => RootAsync("transit/keys/app/config", new { min_decryption_version = version });

    /// <summary>A call to the emulator with its root token (what an operator does with the Vault CLI).</summary>
    public async Task RootAsync(string path, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Vault.Address, "v1/" + path)) { Content = JsonContent.Create(body) };
        request.Headers.Add("X-Vault-Token", VaultEmulatorHost.RootToken);
        using var response = await _http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await Host.DisposeAsync();
        await Vault.DisposeAsync();
    }
}

[Trait("Category", "Integration")]
public sealed class VaultTransitContractTests(VaultTransitFixture fixture) : KeyStoreContractTests(fixture), IClassFixture<VaultTransitFixture>
{
    [Fact]
    public async Task The_store_ciphertext_is_transits_own_and_the_key_version_is_its_number()
    {
        var encrypted = await Calls.EncryptAsync("transit/other", Plaintext, Context);
        Assert.Contains("vault:v1:", Encoding.ASCII.GetString(encrypted.Ciphertext.Span), StringComparison.Ordinal);
        Assert.Equal("1", encrypted.KeyVersion);
    }

    [Fact]
    public async Task A_key_that_is_not_derived_is_refused_because_vault_would_ignore_the_context()
    {
        var status = await CryptoCalls.FailsAsync(() => Calls.EncryptAsync("transit/not-derived", Plaintext, Context));
        Assert.Equal(StatusCode.FailedPrecondition, status.StatusCode);
        Assert.Contains("derived=true", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_key_is_not_found_and_vault_faults_are_unavailable()
    {
        Assert.Equal(StatusCode.NotFound, (await CryptoCalls.FailsAsync(() => Calls.EncryptAsync("transit/missing", Plaintext))).StatusCode);
        var encrypted = await Calls.EncryptAsync("transit/other", Plaintext, Context);
        fixture.Vault.SetFaults("""{ "sealed": true }""");
        try
        {
            Assert.Equal(StatusCode.Unavailable, (await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(encrypted.Ciphertext, Context))).StatusCode);
        }
        finally
        {
            fixture.Vault.ResetFaults();
        }
    }
}
