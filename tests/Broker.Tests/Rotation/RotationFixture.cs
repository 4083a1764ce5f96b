using System.Globalization;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>What the rotation tests share: a writable local mount's secrets file, the policy, and the rotation configuration.</summary>
internal static class RotationFixture
{
    public const string Policy = """
        policies:
          - name: rotation-tests
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["demo/**"]
                capabilities: [read, list, watch]
              - paths: ["demo/keys/**", "demo/db/**"]
                capabilities: [rotate]
        """;

    /// <summary>The policy of the aws-sm rotation tests: everything but writes on the mount <c>aws</c>.</summary>
    public const string AwsPolicy = """
        policies:
          - name: aws-rotation-tests
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["aws/**"]
                capabilities: [read, list, watch, rotate]
        """;

    /// <summary>A secrets file with a generated-strategy key, postgres single and alternating secrets, and the admin secret.</summary>
    public static string SecretsFile(int pgPort) => $$"""
        secrets:
          keys/ci:
            data:
              api_key: FAKE-old-api-key
              owner: team-alpha
          other/plain:
            data:
              token: FAKE-token
          db/single:
            data:
              engine: postgres
              host: 127.0.0.1
              port: "{{pgPort.ToString(CultureInfo.InvariantCulture)}}"
              dbname: postgres
              username: app_single
              password: FAKE-single-password
          db/alt:
            data:
              engine: postgres
              host: 127.0.0.1
              port: "{{pgPort.ToString(CultureInfo.InvariantCulture)}}"
              dbname: postgres
              username: app
              password: FAKE-alt-password
          admin/pg:
            data:
              username: postgres
              password: {{PostgresServer.SuperuserPassword}}
        """;

    /// <summary>Configuration keys of the mount and the rotation rules.</summary>
    public static Dictionary<string, string?> Configuration() => new()
    {
        ["Broker:Mounts:0:Prefix"] = "demo",
        ["Broker:Mounts:0:Type"] = "local",
        ["Broker:Mounts:0:File"] = "secrets.yaml",
        ["Broker:Mounts:0:Writable"] = "true",
        ["Broker:Policy:File"] = "policy.yaml",
        ["Broker:Rotation:0:Paths"] = "demo/keys/*",
        ["Broker:Rotation:0:Strategy"] = "generated",
        ["Broker:Rotation:0:Fields:0"] = "api_key",
        ["Broker:Rotation:1:Paths"] = "demo/db/single",
        ["Broker:Rotation:1:Strategy"] = "postgres",
        ["Broker:Rotation:2:Paths"] = "demo/db/alt",
        ["Broker:Rotation:2:Strategy"] = "postgres",
        ["Broker:Rotation:2:Postgres:Mode"] = "alternating",
        ["Broker:Rotation:2:Postgres:AdminSecret"] = "demo/admin/pg",
        ["Broker:RotationEngine:ScheduleInterval"] = "00:00:01",
    };

    public static async Task PrepareDatabaseAsync(PostgresServer pg)
    {
        await pg.CreateLoginRoleAsync("app_single", "FAKE-single-password");
        await pg.CreateLoginRoleAsync("app", "FAKE-alt-password");
    }
    /// <summary>
    /// The broker as a real child process (so a test can kill it like kill -9, or let it kill itself after a rotation step
    /// with the test-only Broker:RotationEngine:TestCrashAfterStep), on port 0 with the test token and audit key.
    /// </summary>
    public static ExternalProcess StartExternalBroker(TestDirectory directory, Dictionary<string, string?> configuration, int? crashAfterStep = null,
        string environment = "Testing")
    {
        var settings = new Dictionary<string, string?>(configuration)
        {
            ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
            ["Broker:Management:Urls"] = "http://127.0.0.1:0",
            ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "test-alpha",
            ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = BrokerHost.Sha256Hex(BrokerHost.TestToken),
            ["Broker:Auth:DevTokens:AllowOutsideDevelopment"] = "true",
            ["Broker:Audit:Key"] = BrokerHost.TestAuditKey,
            ["Broker:Audit:LocalFile"] = "audit.jsonl",
            ["Broker:RotationEngine:TestCrashAfterStep"] = crashAfterStep?.ToString(CultureInfo.InvariantCulture),
        };
        return ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", directory.Path, "--urls", "http://127.0.0.1:0",
             .. settings.Where(s => s.Value is not null).Select(s => $"--{s.Key}={s.Value}")],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = environment });
    }

    /// <summary>A client of an external broker: one attempt, a long deadline (rotations log in to databases).</summary>
    public static BrokerClient Client(Uri address) =>
        BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = address,
            Token = BrokerHost.TestToken,
            MaxAttempts = 1,
            DefaultTimeout = TimeSpan.FromSeconds(60),
        }).Client;

    /// <summary>
    /// Holds <paramref name="path"/>'s rotation lock as another replica would, once the broker's start-up recovery pass
    /// (which takes each rotated path's lock in turn) has let go of it.
    /// </summary>
    public static async Task<IAsyncDisposable> HoldRotationLockAsync(BrokerHost broker, string path)
    {
        var key = broker.Services.GetRequiredService<SecretsBroker.Broker.Rotation.RotationFlights>().LockKey(path);
        var locks = broker.Services.GetRequiredService<SecretsBroker.Broker.Rotation.IRotationLocks>();
        IAsyncDisposable? held = null;
        await Eventually.WaitUntilAsync(async () => (held = await locks.TryAcquireAsync(key, "held-by-the-test")) is not null,
            because: "the start-up recovery pass lets go of the path");
        return held!;
    }
}
