using System.Security.Cryptography;
using System.Text;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>Broker configuration for cache tests: fixed test keys (never real ones) and a Redis address.</summary>
public static class CacheTestSettings
{
    public static string TestKey(string label) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes("FAKE-cache-test-key-" + label)));

    /// <summary>
    /// No Redis (L1 only). Per-caller rate limiting is off: these tests read far faster than one
    /// caller normally may, and a RESOURCE_EXHAUSTED would hide what the cache did.
    /// </summary>
    public static Dictionary<string, string?> InProcessOnly() => new() { ["Broker:RateLimits:Enabled"] = "false" };

    /// <summary>Redis, the naming key and a key ring of <paramref name="keyIds"/> with <paramref name="activeKeyId"/> active.</summary>
    public static Dictionary<string, string?> WithRedis(RedisServer redis, string activeKeyId = "k1", params string[] keyIds) =>
        WithRedis(redis.ConnectionString, activeKeyId, keyIds);

    /// <summary>As <see cref="WithRedis(RedisServer, string, string[])"/> for any Redis configuration string (a cluster's seeds ...).</summary>
    public static Dictionary<string, string?> WithRedis(string configuration, string activeKeyId = "k1", params string[] keyIds)
    {
        var settings = InProcessOnly();
        settings["Broker:Redis:Configuration"] = configuration;
        settings["Broker:Cache:Encryption:NameKey"] = TestKey("names");
        var ids = keyIds.Length == 0 ? [activeKeyId] : keyIds;
        for (var i = 0; i < ids.Length; i++)
        {
            settings[$"Broker:Cache:Encryption:Keys:{i}:Id"] = ids[i];
            settings[$"Broker:Cache:Encryption:Keys:{i}:Secret"] = TestKey(ids[i]);
            settings[$"Broker:Cache:Encryption:Keys:{i}:Active"] = ids[i] == activeKeyId ? "true" : "false";
        }
        return settings;
    }

    /// <summary>Mount 0: prefix <paramref name="prefix"/> on the counting in-memory backend, with cache durations.</summary>
    public static Dictionary<string, string?> MemoryMount(this Dictionary<string, string?> settings, string prefix = "mem", string? ttl = null, string? maxStaleness = null, int index = 0)
    {
        settings[$"Broker:Mounts:{index}:Prefix"] = prefix;
        settings[$"Broker:Mounts:{index}:Type"] = "memory";
        if (ttl is not null)
        {
            settings[$"Broker:Mounts:{index}:Cache:Ttl"] = ttl;
        }
        if (maxStaleness is not null)
        {
            settings[$"Broker:Mounts:{index}:Cache:MaxStaleness"] = maxStaleness;
        }
        return settings;
    }
}
