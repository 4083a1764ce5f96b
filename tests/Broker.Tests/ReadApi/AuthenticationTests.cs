using Grpc.Core;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.ReadApi;

[Collection(LocalMountCollection.Name)]
public sealed class AuthenticationTests(LocalMountFixture fixture)
{
    [Fact]
    public async Task A_call_without_a_token_is_unauthenticated()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient(token: null).GetSecretAsync("team/ml/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("no credentials", error.Status.Detail);
    }

    [Fact]
    public async Task A_call_with_a_wrong_token_is_unauthenticated_and_reveals_nothing()
    {
        var client = fixture.Host.CreateClient(token: "FAKE-wrong-token");

        var get = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("team/ml/db"));
        var batch = await Assert.ThrowsAsync<RpcException>(() => client.BatchGetSecretsAsync(["team/ml/db"]));
        var list = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("team"));

        Assert.All(new[] { get, batch, list }, e => Assert.Equal(StatusCode.Unauthenticated, e.StatusCode));
        Assert.Equal("the bearer token is not valid", get.Status.Detail);
    }

    [Fact]
    public async Task A_malformed_authorization_header_is_unauthenticated()
    {
        var headers = new Metadata { { "authorization", "Basic Zm9vOmJhcg==" } };
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await fixture.Host.CreateClient(token: null).Raw.GetSecretAsync(new GetSecretRequest { Path = "team/ml/db" }, headers));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("must be 'Bearer <token>'", error.Status.Detail);
    }
}
