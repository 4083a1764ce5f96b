using SecretsBroker.Broker.Http;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Http;

/// <summary>
/// A real broker for the HTTP tests: a local mount <c>demo</c> from a secrets file, the audit stream on a real redis-server, a
/// cleartext HTTP/1.1 port beside the h2c gRPC port, and the AWS Secrets Manager Agent and Dapr drop-ins on their own ports
/// acting as <c>svc-dropin</c>. test-alpha (the bearer token) may read and list demo/alpha/**; svc-dropin may list demo/alpha/**
/// but read only demo/alpha/db, demo/alpha/cert and demo/alpha/none (which does not exist).
/// </summary>
public sealed class HttpTestBroker : IAsyncLifetime
{
    public const string AgentToken = "FAKE-ssrf-token";
    public const string DaprToken = "FAKE-dapr-api-token";

    private const string Secrets = """
        secrets:
          alpha/db:
            versions:
              - data: { username: FAKE-user, password: FAKE-old-password }
                created: 2026-01-01T00:00:00Z
              - data: { username: FAKE-user, password: FAKE-http-password }
                created: 2026-02-01T12:30:00.250Z
          alpha/cert:
            binary: RkFLRS1jZXJ0
          alpha/token:
            data: { value: FAKE-plain-token }
          beta/db:
            data: { password: FAKE-beta-password }
        """;

    private const string Policies = """
        policies:
          - name: alpha
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["demo/alpha", "demo/alpha/**"]
                capabilities: [read, list]
              - paths: ["writable/**"]
                capabilities: [read, write, rotate]
              - paths: ["keys/http"]
                capabilities: [encrypt, decrypt]
          - name: dropin
            appliesTo: { subjects: [svc-dropin] }
            rules:
              - paths: ["demo/alpha", "demo/alpha/**"]
                capabilities: [list]
              - paths: ["demo/alpha/db", "demo/alpha/cert", "demo/alpha/none"]
                capabilities: [read]
        """;

    public RedisServer Redis { get; private set; } = null!;

    public BrokerHost Host { get; private set; } = null!;

    public Uri Http1 => Host.Services.GetRequiredService<HttpListeners>().Http1Addresses.Single();

    public Uri Agent => Host.Services.GetRequiredService<AwsAgentServer>().Addresses.Single();

    public Uri Dapr => Host.Services.GetRequiredService<DaprServer>().Addresses.Single();

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        var directory = new TestDirectory();
        directory.WriteFile("secrets.yaml", Secrets);
        directory.WriteFile("policies.yaml", Policies);
        directory.WriteFile("writable.yaml", "secrets:\n  app/api-key:\n    data: { client: FAKE-client, api_key: FAKE-api-key-v1 }\n");
        directory.WriteFile("keys.yaml", "keys:\n  http:\n    versions:\n      \"1\": " + Convert.ToBase64String("FAKE-http-test-key-32-bytes!!!!!"u8) + "\n");
        var settings = CacheTestSettings.WithRedis(Redis);
        foreach (var (key, value) in new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "demo",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "secrets.yaml",
            ["Broker:Mounts:1:Prefix"] = "writable",
            ["Broker:Mounts:1:Type"] = "local",
            ["Broker:Mounts:1:File"] = "writable.yaml",
            ["Broker:Mounts:1:Writable"] = "true",
            ["Broker:Mounts:2:Prefix"] = "keys",
            ["Broker:Mounts:2:Type"] = "local-keyring",
            ["Broker:Mounts:2:KeyFile"] = "keys.yaml",
            ["Broker:Rotation:0:Paths"] = "writable/app/*",
            ["Broker:Rotation:0:Strategy"] = "generated",
            ["Broker:Rotation:0:Fields:0"] = "api_key",
            ["Broker:Policy:File"] = "policies.yaml",
            ["Broker:Http:Urls"] = "http://127.0.0.1:0",
            ["Broker:AwsAgent:Enabled"] = "true",
            ["Broker:AwsAgent:Urls"] = "http://127.0.0.1:0",
            ["Broker:AwsAgent:Token"] = AgentToken,
            ["Broker:AwsAgent:MountPrefix"] = "demo",
            ["Broker:AwsAgent:Identity:Subject"] = "svc-dropin",
            ["Broker:Dapr:Enabled"] = "true",
            ["Broker:Dapr:Urls"] = "http://127.0.0.1:0",
            ["Broker:Dapr:ApiToken"] = DaprToken,
            ["Broker:Dapr:Stores:alpha"] = "demo/alpha",
            ["Broker:Dapr:Stores:beta"] = "demo/beta",
            ["Broker:Dapr:Identity:Subject"] = "svc-dropin",
        })
        {
            settings[key] = value;
        }
        Host = await BrokerHost.StartAsync(settings, directory);
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await Redis.DisposeAsync();
    }

    /// <summary>Waits for an audit event that matches and returns it with its opened path.</summary>
    public async Task<(SecretsBroker.Audit.V1.AuditEvent Event, string? Path)> AuditedAsync(Func<(SecretsBroker.Audit.V1.AuditEvent Event, string? Path), bool> match,
        string because)
    {
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(Redis)).Any(match), because: because);
        return (await AuditStreamReader.ReadAllAsync(Redis)).First(match);
    }
}

[CollectionDefinition(Name)]
public sealed class HttpBrokerCollection : ICollectionFixture<HttpTestBroker>
{
    public const string Name = "http broker";
}
