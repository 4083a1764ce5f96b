using System.Text;
using Grpc.Core;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>The shared cache against a real redis-server: ciphertext only, tampering, replicas, stampedes, outages.</summary>
[Trait("Category", "Integration")]
public sealed class SharedCacheTests
{
    private static readonly Dictionary<string, string> Db = new() { ["username"] = "FAKE-cache-user", ["password"] = "FAKE-cache-password-1" };

    [Fact]
    public async Task Redis_holds_neither_a_secret_value_nor_a_logical_path_in_plaintext()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("teams/alpha/db", "1", Db);
        memory.Put("teams/beta/api-key", "4", new Dictionary<string, string> { ["key"] = "FAKE-cache-api-key" });
        var directory = new TestDirectory();
        directory.WriteFile("local.yaml", """
            secrets:
              ml/registry:
                versions:
                  - data: { token: FAKE-cache-registry-v1 }
                  - data: { token: FAKE-cache-registry-v2 }
            """);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("kv");
        settings["Broker:Mounts:1:Prefix"] = "files";
        settings["Broker:Mounts:1:Type"] = "local";
        settings["Broker:Mounts:1:File"] = "local.yaml";
        await using var host = await BrokerHost.StartAsync(settings, directory, memory.Register);
        var client = host.CreateClient();

        foreach (var _ in Enumerable.Range(0, 2))
        {
            await client.GetSecretAsync("kv/teams/alpha/db");
            await client.GetSecretAsync("kv/teams/beta/api-key");
            await client.GetSecretAsync("files/ml/registry");
            await client.GetSecretAsync("files/ml/registry", version: "1");
        }
        await client.BatchGetSecretsAsync(["kv/teams/alpha/db", "files/ml/registry"]);

        var dump = await redis.DumpAsync();
        Assert.True(dump.Count >= 4, $"expected the four reads in Redis, found {dump.Count} keys");
        string[] forbidden =
        [
            "FAKE-cache-user", "FAKE-cache-password-1", "FAKE-cache-api-key", "FAKE-cache-registry-v1", "FAKE-cache-registry-v2",
            "teams/alpha/db", "/alpha", "teams/beta/api-key", "ml/registry", "registry", "username", "password", "token",
        ];
        foreach (var (key, contents) in dump)
        {
            // The audit stream names the caller's auth method ("dev-token") by design; field names are checked in the cache entries.
            foreach (var word in key == "secretsbroker:audit" ? forbidden.Except(["username", "password", "token"]) : forbidden)
            {
                Assert.DoesNotContain(word, key, StringComparison.OrdinalIgnoreCase);
                var bytes = Encoding.UTF8.GetBytes(word);
                Assert.All(contents, c => Assert.True(c.AsSpan().IndexOf(bytes) < 0, $"Redis key {key} holds '{word}' in plaintext"));
            }
        }
        host.Logs.AssertNoneContain(["FAKE-cache-user", "FAKE-cache-password-1", "FAKE-cache-api-key", "FAKE-cache-registry", "teams/alpha/db", "ml/registry"]);
    }

    [Fact]
    public async Task A_tampered_value_in_Redis_is_a_counted_miss_and_the_correct_secret_is_read_from_the_backend()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount();
        await using var first = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        await first.CreateClient().GetSecretAsync("mem/db");

        var flipped = await FlipLastByteOfEveryValueAsync(redis);
        Assert.True(flipped > 0, "the read should have left a value in Redis");
        await using var second = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var secret = await second.CreateClient().GetSecretAsync("mem/db");

        Assert.Equal("FAKE-cache-password-1", secret.Data["password"]);
        Assert.Equal(ValueSource.Backend, secret.Serving.Source);
        Assert.Equal(2, memory.ReadsOf("db"));
        Assert.True(second.Services.GetRequiredService<CacheMetrics>().RejectedEntries >= 1);
        Assert.Contains(second.Logs.Lines, l => l.Contains("was rejected and treated as a miss (AuthenticationFailed", StringComparison.Ordinal));
        second.Logs.AssertNoneContain(["FAKE-cache-password-1", "FAKE-cache-user"]);
    }

    [Fact]
    public async Task A_second_replica_serves_from_L2_what_the_first_cached_without_a_backend_call()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount();
        await using var first = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        await using var second = await BrokerHost.StartAsync(settings, configureServices: memory.Register);

        var fromBackend = await first.CreateClient().GetSecretAsync("mem/db");
        var fromL2 = await second.CreateClient().GetSecretAsync("mem/db");
        var fromL1 = await second.CreateClient().GetSecretAsync("mem/db");

        Assert.Equal(ValueSource.Backend, fromBackend.Serving.Source);
        Assert.Equal(ValueSource.L2, fromL2.Serving.Source);
        Assert.Equal(ValueSource.L1, fromL1.Serving.Source);
        Assert.Equal("FAKE-cache-password-1", fromL2.Data["password"]);
        Assert.False(fromL2.Serving.Stale);
        Assert.Equal(1, memory.ReadsOf("db"));
    }

    [Fact]
    public async Task A_key_rotated_replica_reads_values_sealed_with_the_previous_key()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        await using var old = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis, "k1").MemoryMount(), configureServices: memory.Register);
        await using var rotated = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis, "k2", "k1", "k2").MemoryMount(), configureServices: memory.Register);

        await old.CreateClient().GetSecretAsync("mem/db");
        var secret = await rotated.CreateClient().GetSecretAsync("mem/db");

        Assert.Equal(ValueSource.L2, secret.Serving.Source);
        Assert.Equal(1, memory.ReadsOf("db"));
    }

    [Fact]
    public async Task A_file_reload_on_one_replica_is_seen_by_another_before_the_TTL()
    {
        await using var redis = await RedisServer.StartAsync();
        var directory = new TestDirectory();
        const string versionOne = """
            secrets:
              app/key:
                versions:
                  - data: { key: FAKE-shared-reload-v1 }
            """;
        directory.WriteFile("shared.yaml", versionOne);
        var settings = CacheTestSettings.WithRedis(redis);
        settings["Broker:Mounts:0:Prefix"] = "rl";
        settings["Broker:Mounts:0:Type"] = "local";
        settings["Broker:Mounts:0:File"] = "shared.yaml";
        settings["Broker:Mounts:0:Cache:Ttl"] = "01:00:00";
        await using var watching = await BrokerHost.StartAsync(settings, directory);
        // The other replica's mount `rl` is the same store seen through a backend that signals no
        // change (a counting in-memory copy the test keeps equal to the file): only the backplane can
        // tell it that its hour-long L1 entry is out of date.
        var copy = new InMemoryBackend();
        copy.Put("app/key", "1", new Dictionary<string, string> { ["key"] = "FAKE-shared-reload-v1" });
        await using var other = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis).MemoryMount("rl", ttl: "01:00:00"), configureServices: copy.Register);
        var watchingClient = watching.CreateClient();
        var otherClient = other.CreateClient();
        Assert.Equal("1", (await watchingClient.GetSecretAsync("rl/app/key")).Version);
        Assert.Equal(ValueSource.L2, (await otherClient.GetSecretAsync("rl/app/key")).Serving.Source);
        Assert.Equal(ValueSource.L1, (await otherClient.GetSecretAsync("rl/app/key")).Serving.Source);

        copy.Put("app/key", "2", new Dictionary<string, string> { ["key"] = "FAKE-shared-reload-v2" });
        directory.WriteFile("shared.yaml", versionOne + "\n      - data: { key: FAKE-shared-reload-v2 }\n");

        await Eventually.WaitUntilAsync(async () => (await otherClient.GetSecretAsync("rl/app/key")).Version == "2",
            TimeSpan.FromSeconds(15), "the other replica to drop its L1 entry on the backplane message, long before its TTL");
        Assert.Equal("FAKE-shared-reload-v2", (await otherClient.GetSecretAsync("rl/app/key")).Data["key"]);
        Assert.Equal("2", (await watchingClient.GetSecretAsync("rl/app/key")).Version);
        await Eventually.WaitUntilAsync(() => watching.Logs.Lines.Any(l => l.Contains("Cache entries of mount rl invalidated", StringComparison.Ordinal)),
            because: "the invalidation to be logged with the mount name");
    }

    [Fact]
    public async Task A_thousand_concurrent_reads_of_an_uncached_secret_make_one_backend_call()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend { ReadDelay = TimeSpan.FromMilliseconds(200) };
        memory.Put("hot", "1", Db);
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis).MemoryMount(), configureServices: memory.Register);
        var clients = Enumerable.Range(0, 4).Select(_ => host.CreateClient()).ToArray();

        var secrets = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => clients[i % clients.Length].GetSecretAsync("mem/hot")));

        Assert.All(secrets, s => Assert.Equal("FAKE-cache-password-1", s.Data["password"]));
        Assert.Equal(1, memory.ReadsOf("hot"));
        Assert.Single(secrets, s => s.Serving.Source == ValueSource.Backend);
    }

    [Fact]
    public async Task Killing_Redis_during_reads_fails_no_read_and_after_a_restart_L2_is_used_again()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        for (var i = 0; i < 20; i++)
        {
            memory.Put($"s{i}", "1", new Dictionary<string, string> { ["value"] = $"FAKE-stream-{i}" });
        }
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount(ttl: "00:00:00.200");
        await using var first = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        await using var second = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var client = first.CreateClient();
        var succeeded = 0;
        var failures = new List<string>();
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var i = n % 20;
                try
                {
                    var secret = await client.GetSecretAsync($"mem/s{i}");
                    Assert.Equal($"FAKE-stream-{i}", secret.Data["value"]);
                    Interlocked.Increment(ref succeeded);
                }
                catch (RpcException ex)
                {
                    lock (failures)
                    {
                        failures.Add(ex.Status.ToString());
                    }
                }
            }
        });

        await Eventually.WaitUntilAsync(() => Volatile.Read(ref succeeded) >= 200, because: "reads with Redis up");
        await redis.KillAsync();
        var atKill = Volatile.Read(ref succeeded);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref succeeded) >= atKill + 300, because: "reads with Redis down");
        await redis.RestartAsync();
        var late = 0;
        await Eventually.WaitUntilAsync(async () =>
        {
            // A secret the second replica has never seen: it comes from L2 once the first replica writes there again.
            var name = $"late{late++}";
            memory.Put(name, "1", new Dictionary<string, string> { ["value"] = "FAKE-late" });
            await client.GetSecretAsync($"mem/{name}");
            return (await second.CreateClient().GetSecretAsync($"mem/{name}")).Serving.Source == ValueSource.L2;
        }, TimeSpan.FromSeconds(30), "the restarted Redis to serve as L2 again");
        await stop.CancelAsync();
        await reader;

        Assert.Empty(failures);
        Assert.True(Volatile.Read(ref succeeded) >= atKill + 300);
        Assert.Contains(first.Logs.Lines, l => l.Contains("Redis connection lost", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_backend_down_a_replica_that_never_read_the_secret_serves_it_stale_from_L2()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount(ttl: "00:00:00.300", maxStaleness: "00:01:00");
        await using var first = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var fetched = await first.CreateClient().GetSecretAsync("mem/db");
        Assert.Equal(ValueSource.Backend, fetched.Serving.Source);

        memory.Down = true;
        await Eventually.WaitUntilAsync(async () => (await first.CreateClient().GetSecretAsync("mem/db")).Serving.Stale, because: "the TTL to pass");
        await using var second = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var stale = await second.CreateClient().GetSecretAsync("mem/db");

        Assert.True(stale.Serving.Stale);
        Assert.Equal(ValueSource.L2, stale.Serving.Source);
        Assert.True(stale.Serving.Age.ToTimeSpan() > TimeSpan.FromMilliseconds(300));
        Assert.Equal("FAKE-cache-password-1", stale.Data["password"]);
    }

    [Fact]
    public async Task A_broker_whose_Redis_is_unreachable_at_start_still_starts_and_serves()
    {
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        await using var redis = await RedisServer.StartAsync();
        await redis.KillAsync();
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.WithRedis(redis).MemoryMount(), configureServices: memory.Register);
        var client = host.CreateClient();

        var first = await client.GetSecretAsync("mem/db");
        var second = await client.GetSecretAsync("mem/db");

        Assert.Equal(ValueSource.Backend, first.Serving.Source);
        Assert.Equal(ValueSource.L1, second.Serving.Source);
        Assert.Equal("FAKE-cache-password-1", second.Data["password"]);
        Assert.Contains(host.Logs.Lines, l => l.Contains("Redis is not reachable at start", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_key_ring_without_exactly_one_active_key_stops_the_broker_with_a_clear_message()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis, "none", "k1", "k2").MemoryMount();

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => BrokerHost.StartAsync(settings, configureServices: new InMemoryBackend().Register));

        Assert.Contains("exactly one key with Active=true", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(CacheTestSettings.TestKey("k1"), error.Message, StringComparison.Ordinal);
    }

    private static async Task<int> FlipLastByteOfEveryValueAsync(RedisServer redis)
    {
        var database = await redis.DatabaseAsync();
        var server = await redis.AdminServerAsync();
        var flipped = 0;
        await foreach (var key in server.KeysAsync(pattern: "*"))
        {
            if (await database.KeyTypeAsync(key) != RedisType.Hash || await database.HashGetAsync(key, "data") is not { HasValue: true } data)
            {
                continue;
            }
            var bytes = (byte[])data!;
            bytes[^1] ^= 0x01;
            await database.HashSetAsync(key, "data", bytes);
            flipped++;
        }
        return flipped;
    }
}
