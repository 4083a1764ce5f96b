using System.Text;
using Google.Protobuf;
using Grpc.Core;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Audit.Tests.EndToEnd;

/// <summary>
/// The real broker (Development demo mount and policy, audit to a real Redis) and the real audit service,
/// both as processes sharing one audit key: what callers do is what the audit store holds.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BrokerToAuditTests : IAsyncLifetime
{
    private const string DevToken = "dev-only-token";

    private readonly TestDirectory _directory = new();
    private RedisServer _redis = null!;
    private ExternalProcess _broker = null!;
    private Uri _brokerAddress = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0",
             $"--Broker:Redis:Configuration={_redis.ConnectionString}", $"--Broker:Audit:Key={TestEvents.KeyBase64}",
             $"--Broker:Cache:Encryption:NameKey={TestKey("names")}", "--Broker:Cache:Encryption:Keys:0:Id=k1",
             $"--Broker:Cache:Encryption:Keys:0:Secret={TestKey("k1")}", "--Broker:Cache:Encryption:Keys:0:Active=true",
             $"--Broker:Audit:SpoolDirectory={Path.Combine(_directory.Path, "spool")}"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        _brokerAddress = await _broker.WaitForListeningAddressAsync();
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        await _redis.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task N_allowed_and_M_denied_reads_through_the_broker_become_exactly_N_plus_M_stored_events()
    {
        await using var audit = await AuditServiceProcess.StartAsync(_redis, Path.Combine(_directory.Path, "audit.db"));
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = _brokerAddress,
            Token = DevToken,
            MaxAttempts = 1,
        });
        using var _ = channel;

        const int allowed = 12;
        const int denied = 7;
        for (var i = 0; i < allowed; i++)
        {
            var secret = await client.GetSecretAsync(i % 2 == 0 ? "demo/ml/training-db" : "demo/ml/model-registry");
            Assert.NotNull(secret);
        }
        for (var i = 0; i < denied; i++)
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"demo-other/teams/beta/db-{i}"));
            Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        }

        await audit.WaitUntilStoredAsync(allowed + denied);
        var stored = await audit.QueryAllAsync();
        Assert.Equal(allowed + denied, stored.Count);
        Assert.All(stored, s => Assert.Equal("dev-user", s.Event.Caller));
        Assert.Equal(allowed, stored.Count(s => s.Event.Decision == Decision.Allow));
        Assert.Equal(denied, stored.Count(s => s.Event.Decision == Decision.Deny));
        Assert.Equal(allowed / 2, (await audit.QueryAllAsync(new QueryRequest { PathPrefix = "demo/ml/training-db" })).Count);
        Assert.Equal(denied, (await audit.QueryAllAsync(new QueryRequest { PathPrefix = "demo-other/teams" })).Count);
        Assert.Contains(stored, s => s.Event.Path == "demo/ml/model-registry");
        var tokenHmac = await audit.Client.ComputeHmacAsync(new ComputeHmacRequest { Value = DevToken }, AuditServiceProcess.OperatorHeaders);
        Assert.All(stored, s => Assert.Equal(tokenHmac.Hmac, s.Event.TokenHmac));

        // The demo secret's value and the paths are nowhere in the audit store.
        var storeBytes = File.ReadAllBytes(audit.StorePath).Concat(File.Exists(audit.StorePath + "-wal") ? ReadShared(audit.StorePath + "-wal") : []).ToArray();
        foreach (var forbidden in new[] { "FAKE-demo-password-not-real", "FAKE-registry-token", "training-db", "teams/beta", DevToken })
        {
            Assert.True(storeBytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(forbidden)) < 0, $"the audit store contains '{forbidden}'");
        }
        var verify = await audit.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
    }

    [Fact]
    public async Task Forged_events_appended_to_redis_under_guessed_ids_neither_suppress_the_brokers_events_nor_get_stored()
    {
        await using var audit = await AuditServiceProcess.StartAsync(_redis, Path.Combine(_directory.Path, "audit.db"));
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = _brokerAddress,
            Token = DevToken,
            MaxAttempts = 1,
        });
        using var _ = channel;
        await client.GetSecretAsync("demo/ml/training-db");
        await audit.WaitUntilStoredAsync(1);

        // What someone with access to Redis sees: the broker's last event id. They append forged events under the ids
        // the broker would give next if ids were predictable (a fixed random half and a counter), without a MAC and
        // with one under a key of their own.
        var database = await _redis.DatabaseAsync();
        // (The stream itself is trimmed once the event is stored; the id is the one the stream carried.)
        var seen = (await audit.QueryAllAsync()).Single().Event;
        var idBytes = Guid.Parse(seen.Id).ToByteArray();
        var counter = BitConverter.ToInt64(idBytes, 8);
        using var attackersKey = AuditEventMacKey.FromAuditKey(TestKey("attacker"));
        for (var next = 1; next <= 20; next++)
        {
            BitConverter.TryWriteBytes(idBytes.AsSpan(8), counter + next);
            var forged = TestEvents.Make("mallory", "demo/ml/decoy", id: new Guid(idBytes).ToString()).ToByteArray();
            await database.StreamAddAsync(AuditStream.DefaultKey, AuditStream.EventField, forged);
            await database.StreamAddAsync(AuditStream.DefaultKey, [new(AuditStream.EventField, forged), new(AuditStream.MacField, attackersKey.Compute(forged))]);
        }
        for (var i = 0; i < 3; i++)
        {
            await client.GetSecretAsync("demo/ml/model-registry");
        }

        await audit.WaitUntilStoredAsync(4);
        await Eventually.WaitUntilAsync(() => audit.Scalar<long>("SELECT COUNT(*) FROM audit_rejected_entries WHERE reason LIKE 'unauthenticated:%'") == 40,
            because: "the 40 forged events recorded as rejected");
        var stored = await audit.QueryAllAsync();
        Assert.Equal(4, stored.Count);
        Assert.All(stored, s => Assert.Equal("dev-user", s.Event.Caller));
        Assert.Equal(3, stored.Count(s => s.Event.Path == "demo/ml/model-registry"));
        await Eventually.WaitUntilAsync(async () => (await audit.MetricsAsync()).Split('\n')
                .Where(l => l.StartsWith("secretsbroker_audit_events_unauthenticated_total{", StringComparison.Ordinal))
                .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)) == 40,
            because: "the forged events counted");
    }

    /// <summary>A fixed 32-byte test key (never a real one), base64.</summary>
    private static string TestKey(string name) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"FAKE-audit-e2e-{name}".PadRight(32, '!')[..32]));

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
