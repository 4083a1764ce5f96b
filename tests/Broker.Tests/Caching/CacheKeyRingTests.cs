using System.Text;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Tests.Caching;

public sealed class CacheKeyRingTests
{
    private static readonly byte[] Plaintext = Encoding.UTF8.GetBytes("FAKE-plaintext-value");

    [Fact]
    public void A_sealed_value_opens_with_its_key_and_holds_no_plaintext()
    {
        var ring = Ring("k1", "k1");

        var sealedValue = ring.Seal("sb:s:abc", Plaintext);

        Assert.Equal(-1, sealedValue.AsSpan().IndexOf(Plaintext));
        Assert.Equal(UnsealFailure.None, ring.TryUnseal("sb:s:abc", sealedValue, out var opened, out var keyId));
        Assert.Equal(Plaintext, opened);
        Assert.Equal("k1", keyId);
    }

    [Fact]
    public void Every_write_uses_a_fresh_nonce()
    {
        var ring = Ring("k1", "k1");

        Assert.NotEqual(ring.Seal("sb:s:abc", Plaintext), ring.Seal("sb:s:abc", Plaintext));
    }

    [Fact]
    public void A_value_moved_to_another_key_or_altered_in_any_byte_fails_authentication()
    {
        var ring = Ring("k1", "k1");
        var sealedValue = ring.Seal("sb:s:abc", Plaintext);

        Assert.Equal(UnsealFailure.AuthenticationFailed, ring.TryUnseal("sb:s:other", sealedValue, out var moved, out _));
        Assert.Null(moved);
        for (var i = 2 + "k1".Length; i < sealedValue.Length; i++)
        {
            var tampered = (byte[])sealedValue.Clone();
            tampered[i] ^= 0x01;
            Assert.Equal(UnsealFailure.AuthenticationFailed, ring.TryUnseal("sb:s:abc", tampered, out var opened, out _));
            Assert.Null(opened);
        }
    }

    [Fact]
    public void After_a_rotation_old_values_still_open_and_new_ones_use_the_active_key()
    {
        var before = Ring("k1", "k1");
        var after = Ring("k2", "k1", "k2");
        var retired = Ring("k2", "k2");
        var old = before.Seal("sb:s:abc", Plaintext);

        Assert.Equal(UnsealFailure.None, after.TryUnseal("sb:s:abc", old, out _, out var oldKeyId));
        Assert.Equal("k1", oldKeyId);
        Assert.Equal(UnsealFailure.None, after.TryUnseal("sb:s:abc", after.Seal("sb:s:abc", Plaintext), out _, out var newKeyId));
        Assert.Equal("k2", newKeyId);
        Assert.Equal(UnsealFailure.UnknownKey, retired.TryUnseal("sb:s:abc", old, out _, out _));
        Assert.Equal(UnsealFailure.Malformed, after.TryUnseal("sb:s:abc", [1, 2, 3], out _, out _));
    }

    [Fact]
    public void Cache_keys_are_HMACs_that_name_neither_mount_nor_path_nor_version()
    {
        var ring = Ring("k1", "k1");
        var mount = new MountDefinition("kv/teams", "local");

        var key = ring.EntryKey(mount, "alpha/db", new VersionSelector(Version: "3"));

        Assert.DoesNotContain("teams", key, StringComparison.Ordinal);
        Assert.DoesNotContain("alpha", key, StringComparison.Ordinal);
        Assert.NotEqual(key, ring.EntryKey(mount, "alpha/db", VersionSelector.Latest));
        Assert.Equal(key, Ring("k2", "k1", "k2").EntryKey(mount, "alpha/db", new VersionSelector(Version: "3")));
    }

    [Theory]
    [InlineData("no active key", "k1", false, false)]
    [InlineData("two active keys", "k1", true, true)]
    [InlineData("a 16-byte key", "short", true, false)]
    public void An_invalid_key_ring_is_refused_at_start(string because, string secondKeyLabel, bool firstActive, bool secondActive)
    {
        var options = new CacheOptions();
        options.Encryption.NameKey = CacheTestSettings.TestKey("names");
        options.Encryption.Keys.Add(new CacheKeyOptions { Id = "a", Secret = CacheTestSettings.TestKey("a"), Active = firstActive });
        options.Encryption.Keys.Add(new CacheKeyOptions
        {
            Id = "b",
            Secret = secondKeyLabel == "short" ? Convert.ToBase64String(new byte[16]) : CacheTestSettings.TestKey("b"),
            Active = secondActive,
        });

        var result = WithRedis.Validate(null, options);

        Assert.True(result.Failed, because);
        Assert.DoesNotContain(CacheTestSettings.TestKey("a"), result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_Redis_no_key_ring_is_needed()
    {
        Assert.True(new CacheOptionsValidator(Options.Create(new RedisOptions())).Validate(null, new CacheOptions()).Succeeded);
    }

    private static readonly CacheOptionsValidator WithRedis = new(Options.Create(new RedisOptions { Configuration = "127.0.0.1:1" }));

    private static CacheKeyRing Ring(string active, params string[] ids)
    {
        var options = new CacheOptions();
        options.Encryption.NameKey = CacheTestSettings.TestKey("names");
        foreach (var id in ids)
        {
            options.Encryption.Keys.Add(new CacheKeyOptions { Id = id, Secret = CacheTestSettings.TestKey(id), Active = id == active });
        }
        Assert.True(WithRedis.Validate(null, options).Succeeded);
        return new CacheKeyRing(Options.Create(options));
    }
}
