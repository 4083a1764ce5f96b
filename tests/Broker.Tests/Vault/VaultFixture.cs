using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// One emulator and one broker for the Vault read tests: mount <c>vault</c> (vault-kv on the emulator's
/// <c>secret</c> engine) read with a static token whose policy only covers <c>app/*</c>, and mount
/// <c>db</c> (vault-dynamic, database engine). Tests that switch faults on reset them when done.
/// </summary>
public sealed class VaultFixture : IAsyncLifetime
{
    public const string BrokerToken = "FAKE-vault-broker-token";

    public const string Seed = """
        {
          "policies": {
            "broker": [
              { "path": "secret/data/app/*", "capabilities": ["read", "create", "update"] },
              { "path": "secret/metadata/*", "capabilities": ["read", "list"] },
              { "path": "database/creds/*", "capabilities": ["read"] },
              { "path": "sys/leases/revoke", "capabilities": ["update"] }
            ]
          },
          "kv": {
            "secret": {
              "app/db": [ { "password": "FAKE-db-password-v1" }, { "password": "FAKE-db-password-v2", "user": "FAKE-db-user" } ],
              "app/list/api/key": { "key": "FAKE-api-key" },
              "app/list/api-gateway": { "key": "FAKE-gateway-key" },
              "app/list/db": { "key": "FAKE-list-db" },
              "app/list/z": { "key": "FAKE-z" },
              "app/gone": [ { "key": "FAKE-gone-v1" }, { "key": "FAKE-gone-v2", "__deleted": true } ],
              "team-b/secret": { "key": "FAKE-team-b" }
            }
          },
          "database": { "roles": { "readonly": { "default_ttl": "1h", "max_ttl": "2h" } } },
          "tokens": [ { "id": "FAKE-vault-broker-token", "policies": ["broker"], "ttl": "768h" } ]
        }
        """;

    /// <summary>Values and paths that must never show up in broker logs.</summary>
    public static readonly string[] Forbidden =
        ["FAKE-db-password", "FAKE-db-user", "FAKE-api-key", "FAKE-gateway-key", "FAKE-z", "FAKE-list-db", "FAKE-gone", "FAKE-team-b", BrokerToken, "app/db", "team-b/secret"];

    public VaultEmulatorHost Vault { get; private set; } = null!;

    public BrokerHost Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Vault = await VaultEmulatorHost.StartAsync(Seed);
        Host = await BrokerHost.StartAsync(BrokerConfiguration(Vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = BrokerToken,
        }));
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await Vault.DisposeAsync();
    }

    /// <summary>Mounts <c>vault</c> (KV) and <c>db</c> (database creds) on a connection to <paramref name="vault"/> with fast retries.</summary>
    public static Dictionary<string, string?> BrokerConfiguration(Uri vault, IReadOnlyDictionary<string, string?> auth)
    {
        var configuration = new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Address"] = vault.ToString(),
            ["Broker:Vault:Connections:default:MaxRetries"] = "3",
            ["Broker:Vault:Connections:default:RetryBaseDelay"] = "00:00:00.010",
            ["Broker:Vault:Connections:default:RetryMaxDelay"] = "00:00:00.050",
            // Generous: an in-process emulator can take seconds to answer on a loaded 2-core machine. Tests of
            // the timeouts set their own.
            ["Broker:Vault:Connections:default:RequestTimeout"] = "00:00:30",
            ["Broker:Vault:Connections:default:TotalTimeout"] = "00:01:00",
            ["Broker:Mounts:0:Prefix"] = "vault",
            ["Broker:Mounts:0:Type"] = "vault-kv",
            ["Broker:Mounts:0:EnginePath"] = "secret",
            // These tests exercise the Vault client itself (faults, retries, logins): every read must
            // reach Vault. The cache in front of backends has its own tests.
            ["Broker:Mounts:0:Cache:Enabled"] = "false",
            ["Broker:Mounts:1:Prefix"] = "db",
            ["Broker:Mounts:1:Type"] = "vault-dynamic",
            ["Broker:Mounts:1:Engine"] = "database",
        };
        foreach (var (key, value) in auth)
        {
            configuration[key] = value;
        }
        return configuration;
    }
}

[CollectionDefinition(Name)]
public sealed class VaultCollection : ICollectionFixture<VaultFixture>
{
    public const string Name = "vault emulator broker";
}
