using System.Text;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Store;

/// <summary>Scans every byte the service and the stream hold for the paths, the token and a secret value in play.</summary>
[Trait("Category", "Integration")]
public sealed class NoPlaintextTests : RedisAndStoreTest
{
    private const string PathMarker = "zq-plaintext-path-marker";
    private const string SecretValue = "zq-fake-secret-value-s3cr3t";
    private const string Token = "zq-bearer-token-of-alice";

    [Fact]
    public async Task Neither_the_store_file_nor_Redis_nor_the_logs_hold_a_plaintext_path_token_or_secret_value()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, Path.Combine(Directory.Path, "audit.db"));
        var events = Enumerable.Range(0, 20).Select(i => TestEvents.Make(i % 2 == 0 ? "alice" : "bob", $"kv/teams/alpha/{PathMarker}-{i}",
            i % 2 == 0 ? Decision.Allow : Decision.Deny, token: Token)).ToList();
        // The broker read SecretValue for these events; a correct event never carries it.
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), events);
        await service.WaitUntilStoredAsync(events.Count);

        // Query does give the paths back, opened with the key.
        var stored = await service.QueryAllAsync();
        Assert.All(stored, s => Assert.Contains(PathMarker, s.Event.Path));
        Assert.All(stored, s => Assert.Equal(TestEvents.Key.Hmac(Token), s.Event.TokenHmac));

        var forbidden = new[] { PathMarker, SecretValue, Token, "kv/teams" };
        AssertNoneIn(StoreBytes(service.StorePath), forbidden, "the SQLite store");
        var redisBytes = (await Redis.DumpAsync())
            .SelectMany(key => key.Contents.Prepend(Encoding.UTF8.GetBytes(key.Key)))
            .SelectMany(bytes => bytes.Append((byte)0))
            .ToArray();
        AssertNoneIn(redisBytes, forbidden, "Redis");
        AssertNoneIn(Encoding.UTF8.GetBytes(string.Join('\n', service.Output)), forbidden, "the service's logs");
    }

    [Fact]
    public async Task An_event_that_arrives_with_a_plaintext_path_is_sealed_before_it_is_stored()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, Path.Combine(Directory.Path, "audit.db"));
        var unsealed = TestEvents.Make("alice", "");
        unsealed.Path = $"kv/teams/alpha/{PathMarker}";
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), [unsealed]);
        await service.WaitUntilStoredAsync(1);

        var stored = Assert.Single(await service.QueryAllAsync(new QueryRequest { PathPrefix = "kv/teams/alpha" }));
        Assert.Equal(unsealed.Path, stored.Event.Path);
        AssertNoneIn(StoreBytes(service.StorePath), [PathMarker, "kv/teams"], "the SQLite store");
        await service.WaitForOutputAsync("arrived with a plaintext path");
    }

    /// <summary>The database file with its WAL and shared-memory files, as they are on disk now.</summary>
    private static byte[] StoreBytes(string storePath) =>
        new[] { storePath, storePath + "-wal", storePath + "-shm" }
            .Where(File.Exists)
            .SelectMany(path =>
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                return copy.ToArray();
            })
            .ToArray();

    private static void AssertNoneIn(byte[] haystack, IEnumerable<string> needles, string where)
    {
        Assert.True(haystack.Length > 0, $"{where} is empty: nothing was scanned");
        foreach (var needle in needles)
        {
            Assert.True(haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) < 0, $"{where} contains '{needle}'");
            Assert.True(haystack.AsSpan().IndexOf(Encoding.Unicode.GetBytes(needle)) < 0, $"{where} contains '{needle}' (UTF-16)");
        }
    }
}
