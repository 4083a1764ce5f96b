using System.Security.Cryptography.X509Certificates;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Policy;

/// <summary>
/// A broker over HTTPS with mTLS and JWT enabled, a local mount <c>kv</c> holding two teams' secrets, and
/// the namespace-templated policy a shared ML platform uses to isolate teams.
/// </summary>
public sealed class TeamIsolationFixture : IAsyncLifetime
{
    public const string TeamPolicy = """
        policies:
          - name: team-namespaces
            appliesTo: { authMethods: [jwt, mtls] }
            rules:
              - paths: ["kv/teams/{{identity.namespace}}/**"]
                capabilities: [read, list]
        """;

    public TestPki Pki { get; } = new();

    public TestJwtIssuer Jwt { get; private set; } = null!;

    public BrokerHost Host { get; private set; } = null!;

    public X509Certificate2 AlphaCertificate { get; private set; } = null!;

    public X509Certificate2 BetaCertificate { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Jwt = await TestJwtIssuer.StartAsync();
        AlphaCertificate = Pki.IssueClient("trainer", "spiffe://cluster.local/ns/team-alpha/sa/trainer");
        BetaCertificate = Pki.IssueClient("trainer", "spiffe://cluster.local/ns/team-beta/sa/trainer");
        var directory = new TestDirectory();
        directory.WriteFile("teams.yaml", """
            secrets:
              teams/team-alpha/db: { data: { password: FAKE-alpha-password } }
              teams/team-alpha/registry: { data: { token: FAKE-alpha-token } }
              teams/team-beta/db: { data: { password: FAKE-beta-password } }
            """);
        directory.WriteFile("policy.yaml", TeamPolicy);
        directory.WriteFile("client-ca.pem", Pki.AuthorityPem);
        Host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "kv",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "teams.yaml",
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Auth:Mtls:Enabled"] = "true",
            ["Broker:Auth:Mtls:CaFiles:0"] = "client-ca.pem",
            ["Broker:Auth:Jwt:Enabled"] = "true",
            ["Broker:Auth:Jwt:Issuer"] = TestJwtIssuer.Issuer,
            ["Broker:Auth:Jwt:Audiences:0"] = TestJwtIssuer.Audience,
            ["Broker:Auth:Jwt:JwksUrl"] = Jwt.JwksUrl,
            ["Broker:Auth:Jwt:RequireHttpsMetadata"] = "false",
        }, directory, tls: Pki);
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await Jwt.DisposeAsync();
        AlphaCertificate.Dispose();
        BetaCertificate.Dispose();
        Pki.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class TeamIsolationCollection : ICollectionFixture<TeamIsolationFixture>
{
    public const string Name = "team isolation broker";
}
