using Grpc.Core;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Policy;

[Collection(TeamIsolationCollection.Name)]
public sealed class TeamIsolationTests(TeamIsolationFixture fixture)
{
    public static TheoryData<string, string, string> Callers => new()
    {
        { "mtls", "team-alpha", "team-beta" },
        { "mtls", "team-beta", "team-alpha" },
        { "jwt", "team-alpha", "team-beta" },
        { "jwt", "team-beta", "team-alpha" },
    };

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task Each_team_reads_its_own_secret_and_is_denied_the_other_teams(string method, string own, string other)
    {
        var client = ClientFor(method, own);

        var secret = await client.GetSecretAsync($"kv/teams/{own}/db");
        var denied = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"kv/teams/{other}/db"));
        var deniedMissing = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"kv/teams/{other}/does-not-exist"));

        Assert.StartsWith("FAKE-" + own.Split('-')[1], secret.Data["password"]);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        // A denied caller cannot tell an existing secret from a missing one.
        Assert.Equal(StatusCode.PermissionDenied, deniedMissing.StatusCode);
        Assert.Equal(denied.Status.Detail, deniedMissing.Status.Detail);
    }

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task A_batch_answers_own_items_and_denies_the_other_teams_per_item(string method, string own, string other)
    {
        var results = await ClientFor(method, own).BatchGetSecretsAsync(
            [$"kv/teams/{own}/db", $"kv/teams/{other}/db", $"kv/teams/{other}/does-not-exist", $"kv/teams/{own}/does-not-exist"]);

        Assert.Equal(BatchGetSecretsResult.ResultOneofCase.Secret, results[0].ResultCase);
        Assert.Equal((int)StatusCode.PermissionDenied, results[1].Error.Code);
        Assert.Equal((int)StatusCode.PermissionDenied, results[2].Error.Code);
        Assert.Equal(results[1].Error.Message, results[2].Error.Message);
        Assert.Equal((int)StatusCode.NotFound, results[3].Error.Code);
    }

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task A_listing_shows_only_the_callers_own_secrets(string method, string own, string other)
    {
        var client = ClientFor(method, own);

        var listed = await client.ListSecretsAsync($"kv/teams/{own}").ToListAsync();
        // Listing needs the list grant on the prefix itself: the shared parent and the other team's folder are refused
        // alike, whether they exist or not.
        var parent = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("kv/teams"));
        var foreign = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync($"kv/teams/{other}"));
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("kv/teams/team-gamma"));

        Assert.NotEmpty(listed);
        Assert.All(listed, s => Assert.StartsWith($"kv/teams/{own}/", s.Path));
        Assert.All(new[] { parent, foreign, missing }, e => Assert.Equal(StatusCode.PermissionDenied, e.StatusCode));
        Assert.Equal(foreign.Status.Detail, missing.Status.Detail);
    }

    [Theory]
    [InlineData("*")]
    [InlineData("team-alpha/../team-beta")]
    [InlineData("..")]
    [InlineData("team-*")]
    public async Task A_namespace_claim_crafted_to_widen_the_pattern_reads_nothing(string hostileNamespace)
    {
        var client = fixture.Host.CreateClient(token: fixture.Jwt.IssueServiceAccountToken(hostileNamespace, "trainer"));

        var alpha = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("kv/teams/team-alpha/db"));
        var beta = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("kv/teams/team-beta/db"));
        var listed = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("kv/teams"));

        Assert.Equal(StatusCode.PermissionDenied, alpha.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, beta.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, listed.StatusCode);
    }

    [Fact]
    public async Task A_dev_token_identity_has_no_grant_in_this_policy()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("kv/teams/team-alpha/db"));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    private BrokerClient ClientFor(string method, string ns) => method switch
    {
        "mtls" => fixture.Host.CreateClient(token: null, clientCertificate: ns == "team-alpha" ? fixture.AlphaCertificate : fixture.BetaCertificate),
        _ => fixture.Host.CreateClient(token: fixture.Jwt.IssueServiceAccountToken(ns, "trainer")),
    };
}
