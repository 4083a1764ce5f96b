using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>One broker shared by the read-API tests: a local mount <c>team</c> and a counting in-memory mount <c>mem</c>.</summary>
public sealed class LocalMountFixture : IAsyncLifetime
{
    public const string SecretsYaml = """
        secrets:
          ml/db:
            data: { username: FAKE-user-alpha, password: FAKE-password-alpha }
          ml/registry:
            versions:
              - data: { token: FAKE-registry-v1 }
                created: 2026-01-01T00:00:00Z
              - data: { token: FAKE-registry-v2 }
          certs/ca:
            binary: RkFLRS1DQS1CWVRFUw==
        """;

    /// <summary>Every secret value this fixture serves; none may appear in a log line.</summary>
    public static readonly string[] SecretValues =
        ["FAKE-user-alpha", "FAKE-password-alpha", "FAKE-registry-v1", "FAKE-registry-v2", "RkFLRS1DQS1CWVRFUw==", "FAKE-memory-value"];

    public InMemoryBackend Memory { get; } = new();

    public BrokerHost Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("team.yaml", SecretsYaml);
        Memory.Put("shared/one", "7", new Dictionary<string, string> { ["value"] = "FAKE-memory-value" });
        Host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            // These tests assert backend reads (source, read counts); the cache has its own tests (Caching/).
            ["Broker:Mounts:0:Prefix"] = "team",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "team.yaml",
            ["Broker:Mounts:0:Cache:Enabled"] = "false",
            ["Broker:Mounts:1:Prefix"] = "mem",
            ["Broker:Mounts:1:Type"] = "memory",
            ["Broker:Mounts:1:Cache:Enabled"] = "false",
            ["Broker:MaxBatchSize"] = "10",
            ["Broker:MaxRequestBytes"] = "65536",
        }, directory, Memory.Register);
    }

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class LocalMountCollection : ICollectionFixture<LocalMountFixture>
{
    public const string Name = "local mount broker";
}
