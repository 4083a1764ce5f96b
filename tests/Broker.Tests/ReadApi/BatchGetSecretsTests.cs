using Grpc.Core;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.ReadApi;

[Collection(LocalMountCollection.Name)]
public sealed class BatchGetSecretsTests(LocalMountFixture fixture)
{
    [Fact]
    public async Task Results_come_back_in_request_order_and_a_failing_item_does_not_fail_the_batch()
    {
        var results = await fixture.Host.CreateClient().BatchGetSecretsAsync(
            ["team/ml/registry", "team/ml/missing", "bad//path", "mem/shared/one", "nomount/x", "team/ml/db"]);

        Assert.Equal(["team/ml/registry", "team/ml/missing", "bad//path", "mem/shared/one", "nomount/x", "team/ml/db"], results.Select(r => r.Path));
        Assert.Equal("FAKE-registry-v2", results[0].Secret.Data["token"]);
        Assert.Equal((int)StatusCode.NotFound, results[1].Error.Code);
        Assert.Equal((int)StatusCode.InvalidArgument, results[2].Error.Code);
        Assert.Contains("empty segment", results[2].Error.Message);
        Assert.Equal("7", results[3].Secret.Version);
        Assert.Equal((int)StatusCode.NotFound, results[4].Error.Code);
        Assert.Equal("FAKE-password-alpha", results[5].Secret.Data["password"]);
    }

    [Fact]
    public async Task A_path_requested_twice_is_read_once_and_answered_at_both_positions()
    {
        var before = fixture.Memory.ReadsOf("shared/one");

        var results = await fixture.Host.CreateClient().BatchGetSecretsAsync(["mem/shared/one", "team/ml/db", "mem/shared/one"]);

        Assert.Equal(1, fixture.Memory.ReadsOf("shared/one") - before);
        Assert.Equal("mem/shared/one", results[2].Path);
        Assert.Equal(results[0].Secret, results[2].Secret);
    }

    [Fact]
    public async Task An_empty_batch_is_invalid()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().BatchGetSecretsAsync([]));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("at least one", error.Status.Detail);
    }

    [Fact]
    public async Task A_batch_over_the_configured_maximum_is_invalid()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Host.CreateClient().BatchGetSecretsAsync(Enumerable.Range(0, 11).Select(i => $"team/x{i}")));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("paths has 11 entries; the limit is 10", error.Status.Detail);
    }

    [Fact]
    public async Task A_batch_at_the_maximum_is_served()
    {
        var results = await fixture.Host.CreateClient().BatchGetSecretsAsync(Enumerable.Repeat("team/ml/db", 10));

        Assert.Equal(10, results.Count);
        Assert.All(results, r => Assert.Equal(BatchGetSecretsResult.ResultOneofCase.Secret, r.ResultCase));
    }
}
