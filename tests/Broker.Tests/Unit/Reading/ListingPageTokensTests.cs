using System.Buffers.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker.Tests.Caching;

namespace SecretsBroker.Broker.Tests.Unit.Reading;

/// <summary>Sealed ListSecrets page tokens (issue 17, item 2): bound to caller and prefix, tamper-proof, expiring, shared by replicas.</summary>
public sealed class ListingPageTokensTests
{
    private static readonly CallerIdentity Alpha = Jwt("system:serviceaccount:team-alpha:trainer", "team-alpha");
    private static readonly ListingCursor Cursor = new("teams/team-beta/db", 101, 7);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void A_token_opens_for_its_caller_and_prefix_on_any_replica_with_the_same_key_ring()
    {
        var token = Tokens(Ring("k1")).Seal(Alpha, "kv/teams", Cursor);

        Assert.Equal(Cursor, Tokens(Ring("k1")).Open(Alpha, "kv/teams", token));
        Assert.Equal(new ListingCursor(null, 100, 0), Tokens(Ring("k1")).Open(Alpha, "kv", Tokens(Ring("k1")).Seal(Alpha, "kv", new ListingCursor(null, 100, 0))));
    }

    [Fact]
    public void Another_caller_another_prefix_or_any_flipped_bit_is_the_one_invalid_token_answer()
    {
        var tokens = Tokens(Ring("k1"));
        var token = tokens.Seal(Alpha, "kv/teams", Cursor);
        var envelope = Base64Url.DecodeFromChars(token);

        Refused(() => tokens.Open(Jwt("system:serviceaccount:team-alpha:deployer", "team-alpha"), "kv/teams", token));
        Refused(() => tokens.Open(Jwt("system:serviceaccount:team-alpha:trainer", "team-beta"), "kv/teams", token));
        Refused(() => tokens.Open(Alpha with { AuthMethod = "mtls" }, "kv/teams", token));
        Refused(() => tokens.Open(Alpha, "kv/teams/team-alpha", token));
        Refused(() => tokens.Open(Alpha, "kv/teams", token[..^2]));
        Refused(() => tokens.Open(Alpha, "kv/teams", "not a token"));
        for (var bit = 0; bit < envelope.Length * 8; bit++)
        {
            var tampered = (byte[])envelope.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            Refused(() => tokens.Open(Alpha, "kv/teams", Base64Url.EncodeToString(tampered)));
        }
    }

    [Fact]
    public void A_token_expires_after_the_configured_lifetime()
    {
        var tokens = Tokens(Ring("k1"), lifetime: TimeSpan.FromMinutes(5));
        var token = tokens.Seal(Alpha, "kv", Cursor);

        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(Cursor, tokens.Open(Alpha, "kv", token));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Refused(() => tokens.Open(Alpha, "kv", token));
    }

    [Fact]
    public void Tokens_rotate_with_the_key_ring_and_without_one_each_process_has_its_own_key()
    {
        var token = Tokens(Ring("k1")).Seal(Alpha, "kv", Cursor);

        Assert.Equal(Cursor, Tokens(Ring("k2", "k1", "k2")).Open(Alpha, "kv", token));
        Refused(() => Tokens(Ring("k2")).Open(Alpha, "kv", token));
        var development = Tokens(new CacheKeyRing(Options.Create(new CacheOptions())));
        Refused(() => Tokens(new CacheKeyRing(Options.Create(new CacheOptions()))).Open(Alpha, "kv", development.Seal(Alpha, "kv", Cursor)));
        Assert.Equal(Cursor, development.Open(Alpha, "kv", development.Seal(Alpha, "kv", Cursor)));
    }

    [Fact]
    public void A_token_tells_nothing_of_the_cursors_length_and_the_subkey_is_not_a_ring_key()
    {
        var tokens = Tokens(Ring("k1"));

        var lengths = new[] { "a", new string('b', 60), new string('c', 100) }
            .Select(cursor => tokens.Seal(Alpha, "kv", Cursor with { BackendCursor = cursor }).Length).Distinct();

        Assert.Single(lengths);
        var derived = Ring("k1").DeriveKeys("secretsbroker listing page token v1");
        Assert.NotEqual(Convert.FromBase64String(CacheTestSettings.TestKey("k1")), derived.Keys["k1"]);
        Assert.NotEqual(Ring("k1").DeriveKeys("another purpose").Keys["k1"], derived.Keys["k1"]);
    }

    private ListingPageTokens Tokens(CacheKeyRing ring, TimeSpan? lifetime = null) =>
        new(ring, _time, Options.Create(new BrokerOptions { ListPageTokenLifetime = lifetime ?? TimeSpan.FromMinutes(15) }), NullLogger<ListingPageTokens>.Instance);

    private static CacheKeyRing Ring(string active, params string[] ids)
    {
        var encryption = new CacheEncryptionOptions { NameKey = CacheTestSettings.TestKey("names") };
        foreach (var id in ids.Length == 0 ? [active] : ids)
        {
            encryption.Keys.Add(new CacheKeyOptions { Id = id, Secret = CacheTestSettings.TestKey(id), Active = id == active });
        }
        return new CacheKeyRing(Options.Create(new CacheOptions { Encryption = encryption }));
    }

    private static CallerIdentity Jwt(string subject, string ns) =>
        new(subject, "jwt", new Dictionary<string, string> { ["namespace"] = ns, ["service_account"] = subject.Split(':')[^1] });

    private static void Refused(Func<ListingCursor> open)
    {
        var error = Assert.Throws<BrokerException>(() => open());
        Assert.Equal(BrokerErrorKind.InvalidArgument, error.Kind);
        Assert.Equal(ListingPageTokens.Invalid, error.Message);
    }
}
