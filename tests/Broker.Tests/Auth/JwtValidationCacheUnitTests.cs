using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Tests.Auth;

/// <summary>The cache's own lookups, with a FakeTimeProvider and no broker: expiry, bounds and keys.</summary>
public sealed class JwtValidationCacheUnitTests
{
    private const string Token = "FAKE.eyJzdWIiOiJ0cmFpbmVyIn0.FAKE-signature-alpha";

    private static readonly CallerIdentity Trainer = new("system:serviceaccount:team-alpha:trainer", IdentityMapping.JwtMethod,
        new Dictionary<string, string>(StringComparer.Ordinal) { ["namespace"] = "team-alpha" });

    private static JwtValidationCache Create(FakeTimeProvider time, TimeSpan? ttl = null, int size = 10_000) =>
        new(Options.Create(new JwtAuthOptions { ValidationCacheTtl = ttl ?? TimeSpan.FromMinutes(1), ValidationCacheSize = size }), time);

    [Fact]
    public void A_validated_token_is_served_until_the_ttl_passes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time);
        cache.Add(Token, Trainer, time.GetUtcNow().UtcDateTime.AddMinutes(10));

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.True(cache.TryGet(Token, out var identity));
        Assert.Same(Trainer, identity);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(cache.TryGet(Token, out _));
    }

    [Fact]
    public void A_token_is_never_served_once_its_exp_has_passed_even_within_the_ttl()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time, ttl: TimeSpan.FromHours(1));
        var exp = time.GetUtcNow().UtcDateTime.AddSeconds(30);
        cache.Add(Token, Trainer, exp);

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.True(cache.TryGet(Token, out _));

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(cache.TryGet(Token, out _));
    }

    [Fact]
    public void A_token_that_has_already_expired_is_not_stored()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time);

        cache.Add(Token, Trainer, time.GetUtcNow().UtcDateTime.AddSeconds(-1));

        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGet(Token, out _));
    }

    [Fact]
    public void A_different_token_misses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time);
        cache.Add(Token, Trainer, time.GetUtcNow().UtcDateTime.AddMinutes(10));

        Assert.False(cache.TryGet(Token + "x", out _));
        Assert.False(cache.TryGet(Token.AsSpan(0, Token.Length - 1), out _));
    }

    [Fact]
    public void A_zero_ttl_stores_nothing()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time, ttl: TimeSpan.Zero);

        cache.Add(Token, Trainer, time.GetUtcNow().UtcDateTime.AddMinutes(10));

        Assert.False(cache.Enabled);
        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGet(Token, out _));
    }

    [Fact]
    public void The_cache_holds_at_most_its_size()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time, size: 8);

        for (var i = 0; i < 100; i++)
        {
            cache.Add($"{Token}-{i}", Trainer, time.GetUtcNow().UtcDateTime.AddMinutes(10));
            Assert.InRange(cache.Count, 1, 8);
        }
    }

    [Fact]
    public void Keys_are_sha256_digests_never_the_token()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = Create(time);
        var tokens = Enumerable.Range(0, 5).Select(i => $"{Token}-{i}").ToList();
        foreach (var token in tokens)
        {
            cache.Add(token, Trainer, time.GetUtcNow().UtcDateTime.AddMinutes(10));
        }

        var keys = cache.Keys.ToList();
        Assert.Equal(5, keys.Count);
        Assert.All(keys, key => Assert.IsType<TokenDigest>(key));
        Assert.Equal(tokens.Select(t => (object)JwtValidationCache.Digest(t)).ToHashSet(), keys.ToHashSet());
        foreach (var key in keys)
        {
            // The key prints nothing of the token or its hash.
            Assert.Equal(nameof(TokenDigest), key.ToString());
        }
        // The digest is the SHA-256 of the token's UTF-8 bytes, for any length (stack and pooled buffers).
        var longToken = new string('A', 10_000) + "." + Token;
        var digest = JwtValidationCache.Digest(longToken);
        var expected = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(longToken));
        Assert.Equal(BitConverter.ToUInt64(expected, 0), digest.W0);
        Assert.Equal(BitConverter.ToUInt64(expected, 24), digest.W3);
    }
}
