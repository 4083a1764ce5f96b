using System.Security.Cryptography;
using Grpc.Core;
using Microsoft.IdentityModel.Tokens;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Policy;

[Collection(TeamIsolationCollection.Name)]
public sealed class AuthenticationFailureTests(TeamIsolationFixture fixture)
{
    [Fact]
    public async Task An_expired_token_is_unauthenticated()
    {
        var token = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer", expires: DateTime.UtcNow.AddMinutes(-5));

        await AssertUnauthenticatedAsync(token, "the token has expired");
    }

    [Fact]
    public async Task A_token_from_a_foreign_issuer_is_unauthenticated()
    {
        var token = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer", issuer: "https://other-cluster.example.invalid");

        await AssertUnauthenticatedAsync(token, "the token's issuer is not trusted");
    }

    [Fact]
    public async Task A_token_for_another_audience_is_unauthenticated()
    {
        var token = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer", audience: "some-other-service");

        await AssertUnauthenticatedAsync(token, "the token's audience is not this broker");
    }

    [Fact]
    public async Task A_token_signed_by_an_unknown_key_is_unauthenticated()
    {
        using var rogue = RSA.Create(2048);
        var token = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer", signingKey: new RsaSecurityKey(rogue) { KeyId = "test-key-1" });

        await AssertUnauthenticatedAsync(token, "the token's signature is not valid");
    }

    [Fact]
    public async Task A_client_certificate_from_an_untrusted_ca_is_unauthenticated()
    {
        using var rogueCa = new TestPki("Rogue CA");
        using var certificate = rogueCa.IssueClient("trainer", "spiffe://cluster.local/ns/team-alpha/sa/trainer");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Host.CreateClient(token: null, clientCertificate: certificate).GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal("the client certificate is not trusted", error.Status.Detail);
    }

    [Fact]
    public async Task No_credentials_at_all_is_unauthenticated()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient(token: null).GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.StartsWith("no credentials", error.Status.Detail);
    }

    [Fact]
    public async Task Tokens_never_reach_the_log()
    {
        var expired = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer", expires: DateTime.UtcNow.AddMinutes(-5));
        var valid = fixture.Jwt.IssueServiceAccountToken("team-alpha", "trainer");
        await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient(token: expired).GetSecretAsync("kv/teams/team-alpha/db"));
        await fixture.Host.CreateClient(token: valid).GetSecretAsync("kv/teams/team-alpha/db");

        fixture.Host.Logs.AssertNoneContain([expired, valid, expired.Split('.')[2], valid.Split('.')[2], "FAKE-alpha-password"]);
    }

    private async Task AssertUnauthenticatedAsync(string token, string reason)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient(token: token).GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(reason, error.Status.Detail);
    }
}
