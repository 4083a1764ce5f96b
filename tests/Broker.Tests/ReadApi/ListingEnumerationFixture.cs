using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>
/// Two broker replicas sharing one Redis and one cache key ring, JWT auth, a local mount <c>kv</c> holding several
/// tenants' secrets, and the templated team policy with a parent-folder list grant and a deny rule: the set-up in
/// which the security review (issue 17, item 2) enumerated other tenants' names through ListSecrets.
/// </summary>
public sealed class ListingEnumerationFixture : IAsyncLifetime
{
    public const string Policy = """
        policies:
          - name: team-namespaces
            appliesTo: { authMethods: [jwt] }
            rules:
              - paths: ["kv/teams/{{identity.namespace}}/**"]
                capabilities: [read, list]
              - paths: ["kv", "kv/teams"]
                capabilities: [list]
              - paths: ["kv/teams/{{identity.namespace}}/break-glass/**"]
                capabilities: [read, list]
                effect: deny
        """;

    /// <summary>Every name in the mount, in ordinal order; hidden names sit before, between and after team-alpha's own.</summary>
    public static readonly string[] Names =
    [
        "admin/root-token",
        "teams/team-aaa/db",
        "teams/team-alpha/break-glass/root",
        "teams/team-alpha/db",
        "teams/team-alpha/registry",
        "teams/team-alpha0/db",
        "teams/team-beta/db",
        "teams/team-beta/deploy-key",
        "teams/team-beta/registry",
        "zz/outside",
    ];

    /// <summary>What team-alpha may see of them.</summary>
    public static readonly string[] AlphaVisible = ["kv/teams/team-alpha/db", "kv/teams/team-alpha/registry"];

    public RedisServer Redis { get; private set; } = null!;

    public TestJwtIssuer Jwt { get; private set; } = null!;

    public BrokerHost Replica1 { get; private set; } = null!;

    public BrokerHost Replica2 { get; private set; } = null!;

    public BrokerClient Client(BrokerHost host, string ns, string serviceAccount = "trainer") =>
        host.CreateClient(token: Jwt.IssueServiceAccountToken(ns, serviceAccount));

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Jwt = await TestJwtIssuer.StartAsync();
        Replica1 = await StartReplicaAsync();
        Replica2 = await StartReplicaAsync();
    }

    private async Task<BrokerHost> StartReplicaAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("tenants.yaml",
            "secrets:\n" + string.Concat(Names.Select(n => $"  {n}: {{ data: {{ value: FAKE-{n.Replace('/', '-')} }} }}\n")));
        directory.WriteFile("policy.yaml", Policy);
        var settings = CacheTestSettings.WithRedis(Redis);
        settings["Broker:Mounts:0:Prefix"] = "kv";
        settings["Broker:Mounts:0:Type"] = "local";
        settings["Broker:Mounts:0:File"] = "tenants.yaml";
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Auth:Jwt:Enabled"] = "true";
        settings["Broker:Auth:Jwt:Issuer"] = TestJwtIssuer.Issuer;
        settings["Broker:Auth:Jwt:Audiences:0"] = TestJwtIssuer.Audience;
        settings["Broker:Auth:Jwt:JwksUrl"] = Jwt.JwksUrl;
        settings["Broker:Auth:Jwt:RequireHttpsMetadata"] = "false";
        return await BrokerHost.StartAsync(settings, directory);
    }

    public async Task DisposeAsync()
    {
        await Replica1.DisposeAsync();
        await Replica2.DisposeAsync();
        await Jwt.DisposeAsync();
        await Redis.DisposeAsync();
    }
}
