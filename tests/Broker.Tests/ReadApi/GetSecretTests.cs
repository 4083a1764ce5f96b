using Grpc.Core;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.ReadApi;

[Collection(LocalMountCollection.Name)]
public sealed class GetSecretTests(LocalMountFixture fixture)
{
    [Fact]
    public async Task The_latest_version_is_returned_with_its_serving_metadata()
    {
        var secret = await fixture.Host.CreateClient().GetSecretAsync("team/ml/registry");

        Assert.Equal("team/ml/registry", secret.Path);
        Assert.Equal("2", secret.Version);
        Assert.Equal("FAKE-registry-v2", secret.Data["token"]);
        Assert.Equal("team", secret.Serving.Mount);
        Assert.Equal("local", secret.Serving.BackendType);
        Assert.Equal(ValueSource.Backend, secret.Serving.Source);
        Assert.False(secret.Serving.Stale);
    }

    [Fact]
    public async Task An_older_version_is_returned_when_selected()
    {
        var secret = await fixture.Host.CreateClient().GetSecretAsync("team/ml/registry", version: "1");

        Assert.Equal("1", secret.Version);
        Assert.Equal("FAKE-registry-v1", secret.Data["token"]);
        Assert.Equal(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), secret.CreatedTime.ToDateTime());
    }

    [Fact]
    public async Task A_binary_secret_comes_back_as_bytes()
    {
        var secret = await fixture.Host.CreateClient().GetSecretAsync("team/certs/ca");

        Assert.Equal("FAKE-CA-BYTES"u8.ToArray(), secret.BinaryData.ToByteArray());
        Assert.Empty(secret.Data);
    }

    [Theory]
    [InlineData("team/ml/missing", null, StatusCode.NotFound, "secret not found")]
    [InlineData("nomount/ml/db", null, StatusCode.NotFound, "no mount is configured for this path")]
    [InlineData("team/ml/registry", "3", StatusCode.NotFound, "version 3 does not exist; the latest is 2")]
    [InlineData("team/ml/registry", "two", StatusCode.InvalidArgument, "version must be a positive whole number")]
    [InlineData("team/ml/registry", "0", StatusCode.InvalidArgument, "version must be a positive whole number")]
    [InlineData("team", null, StatusCode.InvalidArgument, "path names a mount, not a secret")]
    [InlineData("team//db", null, StatusCode.InvalidArgument, "path has an empty segment")]
    [InlineData("", null, StatusCode.InvalidArgument, "path must not be empty")]
    [InlineData("team/../other", null, StatusCode.InvalidArgument, "relative segments are not allowed")]
    public async Task Bad_requests_get_a_clear_status_and_message(string path, string? version, StatusCode code, string message)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync(path, version));

        Assert.Equal(code, error.StatusCode);
        Assert.Contains(message, error.Status.Detail);
    }

    [Fact]
    public async Task A_stage_on_a_local_mount_is_a_failed_precondition()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAtStageAsync("team/ml/db", "AWSCURRENT"));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("local mounts have no stages", error.Status.Detail);
    }

    [Fact]
    public async Task An_empty_version_selector_is_invalid()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await fixture.Host.CreateClient().Raw.GetSecretAsync(new GetSecretRequest { Path = "team/ml/db", Version = "" }));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Fact]
    public async Task A_request_larger_than_the_limit_is_resource_exhausted_not_internal()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync(new string('a', 70_000)));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
    }

    [Fact]
    public async Task A_path_over_the_length_limit_is_invalid_not_internal()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("team/" + new string('a', 600)));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("the limit is 512", error.Status.Detail);
    }
}
