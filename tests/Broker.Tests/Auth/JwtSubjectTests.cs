using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Auth;

/// <summary>
/// Security review (issue 17, item 6): a validly signed JWT without a subject must not become an identity,
/// or every such token would share the empty subject (and its leases). It is refused and the refusal audited.
/// </summary>
[Trait("Category", "Integration")]
public sealed class JwtSubjectTests
{
    private const string Policy = """
        policies:
          - name: team-namespaces
            appliesTo: { authMethods: [jwt] }
            rules:
              - paths: ["kv/teams/{{identity.namespace}}/**"]
                capabilities: [read]
        """;

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, "")]
    [InlineData(false, "   ")]
    public async Task A_signed_token_without_a_subject_is_unauthenticated_and_the_refusal_audited(bool omitSubject, string? subject)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var issuer = await TestJwtIssuer.StartAsync();
        await using var host = await BrokerHost.StartAsync(Configuration(redis, issuer), Directory());
        var anonymous = issuer.IssueServiceAccountToken("team-alpha", "trainer", omitSubject: omitSubject, subject: subject);

        var error = await Assert.ThrowsAsync<RpcException>(() => host.CreateClient(token: anonymous).GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal("the token has no subject: a non-empty 'sub' claim is required", error.Status.Detail);
        // The same issuer's token with a subject is served: only the missing subject was refused.
        var named = host.CreateClient(token: issuer.IssueServiceAccountToken("team-alpha", "trainer"));
        Assert.Equal("FAKE-alpha-password", (await named.GetSecretAsync("kv/teams/team-alpha/db")).Data["password"]);

        var events = await AuditStreamReader.ReadAllAsync(redis);
        var refused = Assert.Single(events, e => e.Event.Action == "authenticate");
        Assert.Equal(Decision.Deny, refused.Event.Decision);
        Assert.Equal((int)StatusCode.Unauthenticated, refused.Event.GrpcStatus);
        Assert.Equal(AuditStreamReader.Key.Hmac(anonymous), refused.Event.TokenHmac);
        Assert.DoesNotContain(events, e => e.Event.Decision == Decision.Allow && e.Event.Caller == "");
        host.Logs.AssertNoneContain([anonymous, anonymous.Split('.')[2]]);
    }

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

    private static Dictionary<string, string?> Configuration(RedisServer redis, TestJwtIssuer issuer)
    {
        var settings = CacheTestSettings.WithRedis(redis);
        settings["Broker:Mounts:0:Prefix"] = "kv";
        settings["Broker:Mounts:0:Type"] = "local";
        settings["Broker:Mounts:0:File"] = "teams.yaml";
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Auth:Jwt:Enabled"] = "true";
        settings["Broker:Auth:Jwt:Issuer"] = TestJwtIssuer.Issuer;
        settings["Broker:Auth:Jwt:Audiences:0"] = TestJwtIssuer.Audience;
        settings["Broker:Auth:Jwt:JwksUrl"] = issuer.JwksUrl;
        settings["Broker:Auth:Jwt:RequireHttpsMetadata"] = "false";
        return settings;
    }
}
