using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Auth;

/// <summary>
/// Remembers the callers of JWTs that passed validation, so a workload sending the same service-account
/// token on every call pays for JSON parsing and an RS256 signature check once per
/// <see cref="JwtAuthOptions.ValidationCacheTtl"/> instead of on every call (that check is a large share
/// of a cached read's CPU).
/// </summary>
/// <remarks>
/// Entries are keyed by the SHA-256 of the token, never the token itself, so a heap dump or a cache
/// inspection does not hand out credentials. An entry lives until the token's <c>exp</c> or the TTL,
/// whichever is first, checked against the broker's <see cref="TimeProvider"/> on every lookup (MemoryCache's
/// own expiry only reclaims memory), so an expired token is never served; a token whose signing key left the
/// JWKS stays accepted for at most the TTL. The cache holds at most
/// <see cref="JwtAuthOptions.ValidationCacheSize"/> entries, so a flood of distinct valid tokens cannot grow it.
/// </remarks>
public sealed class JwtValidationCache(IOptions<JwtAuthOptions> options, TimeProvider time) : IDisposable
{
    // Tokens longer than this are hashed from a pooled buffer rather than the stack.
    private const int StackLimit = 4096;

    private readonly TimeSpan _ttl = options.Value.ValidationCacheTtl;
    private readonly MemoryCache _entries = new(new MemoryCacheOptions { SizeLimit = options.Value.ValidationCacheSize });

    /// <summary>False when <see cref="JwtAuthOptions.ValidationCacheTtl"/> is zero: every call is validated.</summary>
    public bool Enabled => _ttl > TimeSpan.Zero;

    /// <summary>How many validations are held (expired ones included until MemoryCache reclaims them).</summary>
    public int Count => _entries.Count;

    /// <summary>The cache keys, for tests that prove no key is or contains a token.</summary>
    public IEnumerable<object> Keys => _entries.Keys;

    /// <summary>The token's SHA-256, the only form in which a token is kept.</summary>
    public static TokenDigest Digest(ReadOnlySpan<char> token)
    {
        var length = Encoding.UTF8.GetMaxByteCount(token.Length);
        byte[]? rented = length > StackLimit ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> buffer = rented is null ? stackalloc byte[StackLimit] : rented;
        var written = 0;
        try
        {
            written = Encoding.UTF8.GetBytes(token, buffer);
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(buffer[..written], hash);
            var words = MemoryMarshal.Cast<byte, ulong>(hash);
            return new TokenDigest(words[0], words[1], words[2], words[3]);
        }
        finally
        {
            // The token's bytes do not outlive the hash, on the stack or in the pool.
            buffer[..written].Clear();
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The caller of a token validated earlier, unless its entry has expired by the broker's clock.</summary>
    public bool TryGet(ReadOnlySpan<char> token, [NotNullWhen(true)] out CallerIdentity? identity)
    {
        identity = null;
        if (!Enabled || !_entries.TryGetValue(Digest(token), out Entry? entry) || entry is null || time.GetUtcNow() >= entry.ExpiresAt)
        {
            return false;
        }
        identity = entry.Identity;
        return true;
    }

    /// <summary>
    /// Records a successful validation of <paramref name="token"/>, good until <paramref name="tokenExpires"/>
    /// (the token's <c>exp</c>, UTC) or the TTL from now, whichever is first. Once the cache is full, further
    /// validations are not recorded until MemoryCache has compacted it.
    /// </summary>
    public void Add(ReadOnlySpan<char> token, CallerIdentity identity, DateTime tokenExpires)
    {
        if (!Enabled)
        {
            return;
        }
        var now = time.GetUtcNow();
        var expires = new DateTimeOffset(DateTime.SpecifyKind(tokenExpires, DateTimeKind.Utc));
        if (now + _ttl < expires)
        {
            expires = now + _ttl;
        }
        if (expires <= now)
        {
            return;
        }
        using var entry = _entries.CreateEntry(Digest(token));
        entry.Value = new Entry(identity, expires);
        entry.Size = 1;
        // Only lets MemoryCache reclaim the memory; whether an entry may be served is decided in TryGet.
        entry.AbsoluteExpirationRelativeToNow = expires - now;
    }

    public void Dispose() => _entries.Dispose();

    private sealed record Entry(CallerIdentity Identity, DateTimeOffset ExpiresAt);
}

/// <summary>A token's SHA-256 as four words: a cheap, non-reversible cache key that prints no hash.</summary>
public readonly record struct TokenDigest(ulong W0, ulong W1, ulong W2, ulong W3)
{
    public override string ToString() => nameof(TokenDigest);
}
