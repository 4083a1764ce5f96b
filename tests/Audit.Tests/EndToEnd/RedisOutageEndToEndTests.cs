using System.Text;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Audit.Tests.EndToEnd;

/// <summary>
/// redis-server killed and restarted while a broker process serves reads and the audit service ingests:
/// the broker spools and replays, the audit service stores every served read exactly once.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisOutageEndToEndTests
{
    [Fact]
    public async Task Every_read_served_across_a_redis_crash_is_stored_exactly_once()
    {
        using var directory = new TestDirectory();
        var redisData = Directory.CreateDirectory(Path.Combine(directory.Path, "redis")).FullName;
        await using var redis = await RedisServer.StartAsync(durableIn: redisData);
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0",
             $"--Broker:Redis:Configuration={redis.ConnectionString}", $"--Broker:Audit:Key={TestEvents.KeyBase64}",
             $"--Broker:Cache:Encryption:NameKey={TestKey("names")}", "--Broker:Cache:Encryption:Keys:0:Id=k1",
             $"--Broker:Cache:Encryption:Keys:0:Secret={TestKey("k1")}", "--Broker:Cache:Encryption:Keys:0:Active=true",
             $"--Broker:Audit:SpoolDirectory={Path.Combine(directory.Path, "spool")}", "--Broker:RateLimits:Enabled=false"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        var address = await broker.WaitForListeningAddressAsync();
        await using var audit = await AuditServiceProcess.StartAsync(redis, Path.Combine(directory.Path, "audit.db"));
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = address,
            Token = "dev-only-token",
            MaxAttempts = 1,
        });
        using var _ = channel;

        var served = 0;
        using var stop = new CancellationTokenSource();
        var reads = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await client.GetSecretAsync("demo/ml/training-db");
                Interlocked.Increment(ref served);
            }
        });
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= 30, because: "reads before the crash");
        await redis.KillAsync();
        var atKill = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atKill + 30, because: "reads while Redis is down");
        await redis.RestartAsync();
        var atRestart = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atRestart + 30, because: "reads after Redis is back");
        await stop.CancelAsync();
        await reads;

        await audit.WaitUntilStoredAsync(served);
        var stored = await audit.QueryAllAsync();
        Assert.Equal(served, stored.Count);
        Assert.Equal(served, stored.Select(s => s.Event.Id).Distinct().Count());
        Assert.All(stored, s => Assert.Equal("demo/ml/training-db", s.Event.Path));
        var verify = await audit.Client.VerifyAsync(new V1.VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
    }

    /// <summary>A fixed 32-byte test key (never a real one), base64.</summary>
    private static string TestKey(string name) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"FAKE-audit-e2e-{name}".PadRight(32, '!')[..32]));
}
