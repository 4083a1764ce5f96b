using System.Net;
using Google.Protobuf;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>
/// Security review (issue 17, item 9): ASP.NET Core routing matches paths case-insensitively, so a proxy's
/// exact-name allowlist could be bypassed with another spelling. Only the exact method name is served; any
/// other spelling gets what an unknown method gets: HTTP 200 with grpc-status 12 (UNIMPLEMENTED), Trailers-Only.
/// Raw HTTP/2 requests, since a generated client cannot misspell a method.
/// </summary>
[Trait("Category", "Integration")]
[Collection(LocalMountCollection.Name)]
public sealed class ExactMethodNameTests(LocalMountFixture fixture)
{
    private const int Unimplemented = 12;

    [Theory]
    [InlineData("/secretsbroker.v1.SecretsBroker/getsecret")]
    [InlineData("/secretsbroker.v1.SecretsBroker/GETSECRET")]
    [InlineData("/SecretsBroker.V1.secretsbroker/GetSecret")]
    [InlineData("/secretsbroker.v1.SecretsBroker/NoSuchMethod")]
    public async Task Any_spelling_but_the_exact_method_name_is_unimplemented(string path)
    {
        var answer = await CallAsync(path, new GetSecretRequest { Path = "team/ml/db" }, BrokerHost.TestToken);

        Assert.Equal(HttpStatusCode.OK, answer.HttpStatus);
        Assert.Equal(Unimplemented, answer.GrpcStatus);
        Assert.Empty(answer.Messages);
    }

    [Fact]
    public async Task The_exact_method_name_is_served()
    {
        var answer = await CallAsync("/secretsbroker.v1.SecretsBroker/GetSecret", new GetSecretRequest { Path = "team/ml/db" }, BrokerHost.TestToken);

        Assert.Equal(0, answer.GrpcStatus);
        var secret = GetSecretResponse.Parser.ParseFrom(Assert.Single(answer.Messages));
        Assert.Equal("FAKE-password-alpha", secret.Secret.Data["password"]);
    }

    [Fact]
    public async Task Health_and_reflection_answer_under_their_exact_names_only()
    {
        var health = await CallAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), token: null);
        Assert.Equal(0, health.GrpcStatus);
        Assert.Single(health.Messages);

        var reflection = await CallAsync("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", new ServerReflectionRequest { ListServices = "" }, token: null);
        Assert.Equal(0, reflection.GrpcStatus);
        var services = ServerReflectionResponse.Parser.ParseFrom(Assert.Single(reflection.Messages)).ListServicesResponse.Service.Select(s => s.Name);
        Assert.Contains("secretsbroker.v1.SecretsBroker", services);

        Assert.Equal(Unimplemented, (await CallAsync("/grpc.health.v1.Health/check", new HealthCheckRequest(), token: null)).GrpcStatus);
        Assert.Equal(Unimplemented, (await CallAsync("/grpc.reflection.v1alpha.serverreflection/ServerReflectionInfo",
            new ServerReflectionRequest { ListServices = "" }, token: null)).GrpcStatus);
    }

    private async Task<RawGrpc.Answer> CallAsync(string path, IMessage request, string? token)
    {
        using var http = RawGrpc.CreateClient();
        return await RawGrpc.CallAsync(http, fixture.Host.Address, path, RawGrpc.Frame(request), token);
    }
}
