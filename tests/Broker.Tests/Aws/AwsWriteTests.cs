using System.Text;
using Microsoft.Extensions.DependencyInjection;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The aws-sm write layer against moto's Secrets Manager: PutSecretValue with a ClientRequestToken, stages as boto3
/// sees them, the AWSCURRENT comparison standing in for check-and-set.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsWriteTests(MotoServer moto) : IClassFixture<MotoServer>, IAsyncLifetime
{
    private readonly string _run = "w" + Guid.NewGuid().ToString("N")[..10];
    private BrokerHost _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerHost.StartAsync(moto.MountConfiguration());

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private ISecretWriter Writer(string name) =>
        Assert.IsType<AwsSecretsManagerBackend>(_broker.Services.GetRequiredService<MountTable>().Resolve("aws/" + name).Mounted.Backend);

    [Fact]
    public async Task Fields_become_a_json_secret_string_made_current_with_the_old_version_previous()
    {
        var name = $"{_run}/api";
        var first = (string)(await moto.Boto3Async(new { op = "create", name, @string = "FAKE-plain-first" }))["VersionId"]!;

        var written = await Writer(name).WriteVersionAsync(name,
            new SecretWrite { Data = new Dictionary<string, string> { ["key"] = "FAKE-key-2", ["quote\"d"] = "a\"b" }, ExpectedVersion = first },
            CancellationToken.None);

        var stages = (await moto.Boto3Async(new { op = "describe", name }))["VersionIdsToStages"]!.AsObject();
        Assert.Equal(["AWSCURRENT"], stages[written.Version]!.AsArray().Select(s => (string)s!));
        Assert.Equal(["AWSPREVIOUS"], stages[first]!.AsArray().Select(s => (string)s!));
        Assert.True(Guid.TryParseExact(written.Version, "D", out _));
        Assert.NotNull(written.CreatedAt);
        var stored = await moto.Boto3Async(new { op = "get", name });
        Assert.Equal("""{"key":"FAKE-key-2","quote\u0022d":"a\u0022b"}""", Encoding.UTF8.GetString(Convert.FromBase64String((string)stored["SecretStringB64"]!)));
        var read = await _broker.CreateClient().GetSecretAsync("aws/" + name);
        Assert.Equal("FAKE-key-2", read.Data["key"]);
        Assert.Equal("a\"b", read.Data["quote\"d"]);
    }

    [Fact]
    public async Task Bytes_become_a_secret_binary()
    {
        var name = $"{_run}/blob";
        await moto.Boto3Async(new { op = "create", name, @string = "FAKE-text" });
        byte[] bytes = [0, 1, 2, 250, 255];

        await Writer(name).WriteVersionAsync(name, new SecretWrite { Binary = bytes }, CancellationToken.None);

        var stored = await moto.Boto3Async(new { op = "get", name });
        Assert.Equal(bytes, Convert.FromBase64String((string)stored["SecretBinaryB64"]!));
    }

    [Fact]
    public async Task A_stale_expected_version_fails_naming_the_current_one_and_writes_nothing()
    {
        var name = $"{_run}/cas";
        var first = (string)(await moto.Boto3Async(new { op = "create", name, @string = "FAKE-1" }))["VersionId"]!;
        var second = (string)(await moto.Boto3Async(new { op = "put", name, @string = "FAKE-2" }))["VersionId"]!;

        var stale = await Assert.ThrowsAsync<BrokerException>(() => Writer(name).WriteVersionAsync(name,
            new SecretWrite { Data = new Dictionary<string, string> { ["v"] = "FAKE-3" }, ExpectedVersion = first }, CancellationToken.None));
        var onlyIfNew = await Assert.ThrowsAsync<BrokerException>(() => Writer(name).WriteVersionAsync(name,
            new SecretWrite { Data = new Dictionary<string, string> { ["v"] = "FAKE-3" }, ExpectedVersion = "" }, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.FailedPrecondition, stale.Kind);
        Assert.Equal($"check-and-set failed: the current version is {second}", stale.Message);
        Assert.Equal(BrokerErrorKind.FailedPrecondition, onlyIfNew.Kind);
        Assert.Equal(2, (await moto.Boto3Async(new { op = "versions", name }))["Versions"]!.AsArray().Count);
    }

    [Fact]
    public async Task One_token_makes_one_version_and_the_same_token_with_another_value_is_already_exists()
    {
        var name = $"{_run}/idem";
        await moto.Boto3Async(new { op = "create", name, @string = "FAKE-1" });
        var token = SecretsManagerClient.NewClientRequestToken();
        var write = new SecretWrite { Data = new Dictionary<string, string> { ["v"] = "FAKE-2" }, IdempotencyToken = token };

        var once = await Writer(name).WriteVersionAsync(name, write, CancellationToken.None);
        var again = await Writer(name).WriteVersionAsync(name, write, CancellationToken.None);
        var other = await Assert.ThrowsAsync<BrokerException>(() => Writer(name).WriteVersionAsync(name,
            write with { Data = new Dictionary<string, string> { ["v"] = "FAKE-other" } }, CancellationToken.None));

        Assert.Equal(token, once.Version);
        Assert.Equal(token, again.Version);
        Assert.Equal(BrokerErrorKind.AlreadyExists, other.Kind);
        Assert.Equal(2, (await moto.Boto3Async(new { op = "versions", name }))["Versions"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_pending_version_keeps_awscurrent_where_it_was()
    {
        var name = $"{_run}/pending";
        var first = (string)(await moto.Boto3Async(new { op = "create", name, @string = "FAKE-1" }))["VersionId"]!;

        var pending = await Writer(name).WriteVersionAsync(name,
            new SecretWrite { Data = new Dictionary<string, string> { ["v"] = "FAKE-pending" }, Stages = ["AWSPENDING"] }, CancellationToken.None);

        var stages = (await moto.Boto3Async(new { op = "describe", name }))["VersionIdsToStages"]!.AsObject();
        Assert.Equal(["AWSCURRENT"], stages[first]!.AsArray().Select(s => (string)s!));
        Assert.Equal(["AWSPENDING"], stages[pending.Version]!.AsArray().Select(s => (string)s!));
    }

    [Fact]
    public async Task A_secret_that_does_not_exist_is_not_created()
    {
        var name = $"{_run}/absent";

        var error = await Assert.ThrowsAsync<BrokerException>(() => Writer(name).WriteVersionAsync(name,
            new SecretWrite { Data = new Dictionary<string, string> { ["v"] = "FAKE-x" } }, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.NotFound, error.Kind);
    }
}
