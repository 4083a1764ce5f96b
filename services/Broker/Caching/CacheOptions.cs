using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Caching;

/// <summary>
/// The secret cache, bound from <c>Broker:Cache</c> and validated at start. Without a Redis
/// (<c>Broker:Redis</c>) the broker caches in process only (L1); with it, values are shared through
/// Redis (L2, ciphertext only) and L1 entries are invalidated on every replica through the backplane.
/// </summary>
public sealed class CacheOptions
{
    public const string SectionName = "Broker:Cache";

    /// <summary>Prefix of every Redis key and backplane channel, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "sb";

    /// <summary>Freshness of a cached value for mounts that do not set <c>Cache:Ttl</c>.</summary>
    public TimeSpan DefaultTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long past its TTL a value may be served (flagged stale) while its backend is down, for mounts that do not set <c>Cache:MaxStaleness</c>.</summary>
    public TimeSpan DefaultMaxStaleness { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Fraction of the TTL after which a read refreshes the value in the background (0 disables eager refresh).</summary>
    public float EagerRefreshThreshold { get; set; } = 0.8f;

    /// <summary>After a Redis failure, how long the broker stops trying Redis before it tries again.</summary>
    public TimeSpan RedisCircuitBreakerDuration { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Diagnostics and benchmarks only: true skips the in-process L1 (every cached read goes to Redis, L2).
    /// Off by default; production keeps L1.
    /// </summary>
    public bool SkipL1 { get; set; }

    /// <summary>
    /// The most secrets (entries: a name at one version or stage) held in the in-process L1 at once; a read of
    /// another secret past it is served from Redis or the backend and compacts L1 (the least recently used go
    /// first). Also bounds the remembered entry names (<see cref="CacheKeyRing"/>). docs/benchmarks.md "Cost curves"
    /// gives the memory per cached secret to size it.
    /// </summary>
    public int L1MaxEntries { get; set; } = DefaultL1MaxEntries;

    public const int DefaultL1MaxEntries = 200_000;

    /// <summary>Keys that seal values in Redis. Required when <see cref="Redis"/> is set.</summary>
    public CacheEncryptionOptions Encryption { get; set; } = new();
}

/// <summary>The key ring: AES-256-GCM keys by id (exactly one active for writing) and the HMAC key for Redis key names.</summary>
public sealed class CacheEncryptionOptions
{
    /// <summary>Base64 of 32 random bytes; HMAC-SHA256 key that turns mount, path and version into Redis key names.</summary>
    public string? NameKey { get; set; }

    public List<CacheKeyOptions> Keys { get; set; } = [];
}

public sealed class CacheKeyOptions
{
    /// <summary>Short id written in every envelope (1 to 32 ASCII letters, digits, '-' or '_').</summary>
    public string? Id { get; set; }

    /// <summary>Base64 of 32 random bytes (<c>openssl rand -base64 32</c>).</summary>
    public string? Secret { get; set; }

    /// <summary>The one key that seals new values; the others only open values sealed before a rotation.</summary>
    public bool Active { get; set; }
}

/// <summary>Checks the cache section at start so a bad key ring stops the broker with a clear message (never quoting key material).</summary>
public sealed class CacheOptionsValidator(IOptions<RedisOptions> redis) : IValidateOptions<CacheOptions>
{
    public ValidateOptionsResult Validate(string? name, CacheOptions options)
    {
        var failures = new List<string>();
        if (options.DefaultTtl <= TimeSpan.Zero)
        {
            failures.Add($"{CacheOptions.SectionName}:DefaultTtl must be greater than zero");
        }
        if (options.DefaultMaxStaleness < TimeSpan.Zero)
        {
            failures.Add($"{CacheOptions.SectionName}:DefaultMaxStaleness must not be negative");
        }
        if (options.EagerRefreshThreshold is < 0 or >= 1)
        {
            failures.Add($"{CacheOptions.SectionName}:EagerRefreshThreshold must be 0 (off) or between 0 and 1");
        }
        if (options.L1MaxEntries is < 1 or > 100_000_000)
        {
            failures.Add($"{CacheOptions.SectionName}:L1MaxEntries must be between 1 and 100000000");
        }
        if (options.RedisCircuitBreakerDuration < TimeSpan.Zero)
        {
            failures.Add($"{CacheOptions.SectionName}:RedisCircuitBreakerDuration must not be negative");
        }
        if (string.IsNullOrWhiteSpace(options.KeyPrefix) || options.KeyPrefix.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
        {
            failures.Add($"{CacheOptions.SectionName}:KeyPrefix must be ASCII letters, digits, '-', '_' or '.'");
        }
        if (redis.Value.IsConfigured)
        {
            failures.AddRange(ValidateKeyRing(options.Encryption));
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static IEnumerable<string> ValidateKeyRing(CacheEncryptionOptions encryption)
    {
        const string where = CacheOptions.SectionName + ":Encryption";
        if (!IsKey(encryption.NameKey))
        {
            yield return $"{where}:NameKey must be base64 of exactly 32 bytes (generate with: openssl rand -base64 32)";
        }
        if (encryption.Keys.Count == 0)
        {
            yield return $"{where}:Keys is empty: Redis holds only ciphertext, so configure at least one key (see docs/cache.md)";
        }
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < encryption.Keys.Count; i++)
        {
            var key = encryption.Keys[i];
            if (string.IsNullOrEmpty(key.Id) || key.Id.Length > 32 || key.Id.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_')))
            {
                yield return $"{where}:Keys:{i}:Id must be 1 to 32 ASCII letters, digits, '-' or '_'";
            }
            else if (!ids.Add(key.Id))
            {
                yield return $"{where}:Keys:{i}:Id '{key.Id}' is used twice";
            }
            if (!IsKey(key.Secret))
            {
                yield return $"{where}:Keys:{i}:Secret must be base64 of exactly 32 bytes (generate with: openssl rand -base64 32)";
            }
        }
        var active = encryption.Keys.Count(k => k.Active);
        if (encryption.Keys.Count > 0 && active != 1)
        {
            yield return $"{where}:Keys must have exactly one key with Active=true (found {active})";
        }
    }

    internal static bool IsKey(string? base64)
    {
        if (string.IsNullOrWhiteSpace(base64))
        {
            return false;
        }
        Span<byte> buffer = stackalloc byte[48];
        return Convert.TryFromBase64String(base64.Trim(), buffer, out var written) && written == 32;
    }
}
