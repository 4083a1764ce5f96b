using Grpc.Core;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.Auth;

/// <summary>
/// The cache of successful JWT validations, through the real broker and a real JWKS endpoint. The broker's
/// clock is a FakeTimeProvider, so cache TTLs and token expiries pass without waiting; key rotation is real:
/// the issuer serves only a new key, and the broker picks it up when a token signed with it arrives.
/// </summary>
[Trait("Category", "Integration")]
public sealed class JwtValidationCacheTests
{
    private const string Policy = """
        policies:
          - name: team-namespaces
            appliesTo: { authMethods: [jwt] }
            rules:
              - paths: ["kv/teams/{{identity.namespace}}/**"]
                capabilities: [read]
        """;

    private const string SignatureNotValid = "the token's signature is not valid";

    [Fact]
    public async Task A_cached_token_outlives_its_rotated_out_key_only_until_the_cache_ttl_passes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var issuer = await TestJwtIssuer.StartAsync();
        await using var host = await StartBrokerAsync(issuer, time, ttl: "00:01:00");
        var old = host.CreateClient(token: issuer.IssueServiceAccountToken("team-alpha", "trainer"));
        for (var call = 0; call < 5; call++)
        {
            Assert.Equal("FAKE-alpha-password", (await old.GetSecretAsync("kv/teams/team-alpha/db")).Data["password"]);
        }
        Assert.Equal(1, Cache(host).Count);

        await RotateKeyAndWaitForTheBrokerAsync(issuer, host);

        // The broker's JWKS no longer holds the old key, but the validation is remembered.
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("FAKE-alpha-password", (await old.GetSecretAsync("kv/teams/team-alpha/db")).Data["password"]);

        time.Advance(TimeSpan.FromSeconds(2));
        await AssertUnauthenticatedAsync(old, SignatureNotValid);
    }

    [Fact]
    public async Task With_a_zero_ttl_every_call_is_validated_and_a_rotated_out_key_is_refused_at_once()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var issuer = await TestJwtIssuer.StartAsync();
        await using var host = await StartBrokerAsync(issuer, time, ttl: "00:00:00");
        var old = host.CreateClient(token: issuer.IssueServiceAccountToken("team-alpha", "trainer"));
        await old.GetSecretAsync("kv/teams/team-alpha/db");
        await old.GetSecretAsync("kv/teams/team-alpha/db");

        await RotateKeyAndWaitForTheBrokerAsync(issuer, host);
        await AssertUnauthenticatedAsync(old, SignatureNotValid);
        Assert.False(Cache(host).Enabled);
        Assert.Equal(0, Cache(host).Count);
    }

    [Fact]
    public async Task A_token_past_its_exp_is_not_served_from_the_cache_even_within_the_ttl()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var issuer = await TestJwtIssuer.StartAsync();
        await using var host = await StartBrokerAsync(issuer, time, ttl: "01:00:00");
        var shortLived = host.CreateClient(token: issuer.IssueServiceAccountToken("team-alpha", "trainer", expires: DateTime.UtcNow.AddMinutes(2)));
        await shortLived.GetSecretAsync("kv/teams/team-alpha/db");
        // With the key rotated out, re-validation fails whatever clock IdentityModel uses: only the cache accepts it.
        await RotateKeyAndWaitForTheBrokerAsync(issuer, host);
        await shortLived.GetSecretAsync("kv/teams/team-alpha/db");

        time.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<RpcException>(() => shortLived.GetSecretAsync("kv/teams/team-alpha/db"));
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task Invalid_tokens_are_refused_with_todays_reasons_and_never_cached()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var issuer = await TestJwtIssuer.StartAsync();
        await using var host = await StartBrokerAsync(issuer, time, ttl: "00:01:00");
        var expired = issuer.IssueServiceAccountToken("team-alpha", "trainer", expires: DateTime.UtcNow.AddMinutes(-5));
        var foreign = issuer.IssueServiceAccountToken("team-alpha", "trainer", issuer: "https://other-cluster.example.invalid");

        for (var call = 0; call < 2; call++)
        {
            await AssertUnauthenticatedAsync(host.CreateClient(token: expired), "the token has expired");
            await AssertUnauthenticatedAsync(host.CreateClient(token: foreign), "the token's issuer is not trusted");
        }

        Assert.Equal(0, Cache(host).Count);
        var valid = issuer.IssueServiceAccountToken("team-alpha", "trainer");
        await host.CreateClient(token: valid).GetSecretAsync("kv/teams/team-alpha/db");
        await host.CreateClient(token: valid).GetSecretAsync("kv/teams/team-alpha/db");
        // Neither the tokens nor their hashes (the cache keys) are logged.
        host.Logs.AssertNoneContain([expired, foreign, valid, valid.Split('.')[2], BrokerHost.Sha256Hex(valid), BrokerHost.Sha256Hex(valid).ToUpperInvariant()]);
    }

    [Theory]
    [InlineData("ValidationCacheTtl", "-00:00:01", "Broker:Auth:Jwt:ValidationCacheTtl must be between 00:00:00 (no cache) and 01:00:00")]
    [InlineData("ValidationCacheTtl", "01:00:01", "Broker:Auth:Jwt:ValidationCacheTtl must be between 00:00:00 (no cache) and 01:00:00")]
    [InlineData("ValidationCacheSize", "0", "Broker:Auth:Jwt:ValidationCacheSize must be between 1 and 1000000")]
    [InlineData("ValidationCacheSize", "1000001", "Broker:Auth:Jwt:ValidationCacheSize must be between 1 and 1000000")]
    public async Task Bad_cache_options_stop_the_broker_with_a_message_naming_the_setting(string option, string value, string message)
    {
        await using var issuer = await TestJwtIssuer.StartAsync();
        var configuration = Configuration(issuer, ttl: "00:01:00");
        configuration[$"Broker:Auth:Jwt:{option}"] = value;

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => BrokerHost.StartAsync(configuration, Directory()));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    private static async Task RotateKeyAndWaitForTheBrokerAsync(TestJwtIssuer issuer, BrokerHost host)
    {
        issuer.RotateKey();
        var fresh = host.CreateClient(token: issuer.IssueServiceAccountToken("team-alpha", "trainer"));
        // The first token with the new key id makes JwtBearer ask for the JWKS again.
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                await fresh.GetSecretAsync("kv/teams/team-alpha/db");
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
            {
                return false;
            }
        }, because: "the broker fetches the rotated JWKS");
    }

    private static async Task AssertUnauthenticatedAsync(BrokerClient client, string reason)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(reason, error.Status.Detail);
    }

    private static JwtValidationCache Cache(BrokerHost host) => host.Services.GetRequiredService<JwtValidationCache>();

    /// <summary>
    /// A broker on <paramref name="time"/>. IdentityModel's own last-known-good fallback (which keeps accepting
    /// keys of a replaced JWKS for LastKnownGoodLifetime, an hour by default, on the real clock) is turned off
    /// here, so a rotated-out key is refused as soon as the cache no longer serves the token.
    /// </summary>
    private static Task<BrokerHost> StartBrokerAsync(TestJwtIssuer issuer, TimeProvider time, string ttl) =>
        BrokerHost.StartAsync(Configuration(issuer, ttl), Directory(), configureServices: builder =>
        {
            builder.Services.AddSingleton(time);
            builder.Services.PostConfigure<JwtBearerOptions>(AuthenticationExtensions.JwtScheme,
                o => ((BaseConfigurationManager)o.ConfigurationManager!).UseLastKnownGoodConfiguration = false);
        });

    private static TestDirectory Directory()
    {
        var directory = new TestDirectory();
        directory.WriteFile("teams.yaml", """
            secrets:
              teams/team-alpha/db: { data: { password: FAKE-alpha-password } }
            """);
        directory.WriteFile("policy.yaml", Policy);
        return directory;
    }

    private static Dictionary<string, string?> Configuration(TestJwtIssuer issuer, string ttl) => new()
    {
        ["Broker:Mounts:0:Prefix"] = "kv",
        ["Broker:Mounts:0:Type"] = "local",
        ["Broker:Mounts:0:File"] = "teams.yaml",
        ["Broker:Policy:File"] = "policy.yaml",
        ["Broker:Auth:Jwt:Enabled"] = "true",
        ["Broker:Auth:Jwt:Issuer"] = TestJwtIssuer.Issuer,
        ["Broker:Auth:Jwt:Audiences:0"] = TestJwtIssuer.Audience,
        ["Broker:Auth:Jwt:JwksUrl"] = issuer.JwksUrl,
        ["Broker:Auth:Jwt:RequireHttpsMetadata"] = "false",
        ["Broker:Auth:Jwt:ValidationCacheTtl"] = ttl,
    };
}
