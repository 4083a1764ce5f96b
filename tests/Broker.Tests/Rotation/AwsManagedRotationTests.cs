using System.Text;
using System.Text.Json.Nodes;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>moto with rotation Lambdas (tests/Broker.Tests/Aws/moto_rotation_server.py), for this class only.</summary>
public sealed class MotoWithRotationLambdas : IAsyncLifetime
{
    public MotoServer Moto { get; } = new() { Script = Path.Combine(RepositoryLayout.Root, "tests", "Broker.Tests", "Aws", "moto_rotation_server.py") };

    public Task InitializeAsync() => Moto.InitializeAsync();

    public Task DisposeAsync() => Moto.DisposeAsync();
}

/// <summary>
/// aws-managed rotation against moto: AWS's RotateSecret with the secret's rotation Lambda. moto registers the function but
/// runs no code (its simple Lambda backend: the tests run no Docker containers), so the test plays the function's
/// createSecret and finishSecret with boto3 as AWS's template function does; what is tested is the broker's side: it starts
/// AWS's rotation, waits for the new version to become AWSCURRENT, answers it, drops the cached value and tells watchers;
/// and it follows a rotation AWS runs on its own schedule (the watch poller sees the new version).
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsManagedRotationTests(MotoWithRotationLambdas fixture) : IClassFixture<MotoWithRotationLambdas>
{
    private readonly string _run = "m" + Guid.NewGuid().ToString("N")[..10];

    private MotoServer Moto => fixture.Moto;

    private async Task<BrokerHost> StartBrokerAsync(string pollInterval)
    {
        var settings = Moto.MountConfiguration();
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Rotation:0:Paths"] = $"aws/{_run}/**";
        settings["Broker:Rotation:0:Strategy"] = "aws-managed";
        settings["Broker:Watch:PollInterval"] = pollInterval;
        var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", RotationFixture.AwsPolicy);
        return await BrokerHost.StartAsync(settings, directory);
    }

    /// <summary>A secret whose rotation is configured in AWS with a Lambda, rotated once by AWS as configuring it does.</summary>
    private async Task<string> CreateRotatingSecretAsync(string name)
    {
        await Moto.Boto3Async(new { op = "create", name, @string = """{"api_key":"FAKE-v1"}""" });
        var function = (string)(await Moto.Boto3Async(new { op = "setup_rotation_lambda", function = "rot-" + _run + name.Split('/')[^1] }))["FunctionArn"]!;
        var rotated = await Moto.Boto3Async(new { op = "aws_rotation", name, lambda_arn = function, @string = """{"api_key":"FAKE-v2"}""" });
        return (string)rotated["VersionId"]!;
    }

    private async Task<string> Boto3ApiKeyAsync(string name)
    {
        var value = await Moto.Boto3Async(new { op = "get", name, stage = "AWSCURRENT" });
        return (string)JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String((string)value["SecretStringB64"]!)))!["api_key"]!;
    }

    [Fact]
    public async Task RotateSecret_starts_awss_rotation_and_answers_the_version_its_function_made_current()
    {
        var name = $"{_run}/managed";
        var before = await CreateRotatingSecretAsync(name);
        // The poller is off (an hour): the watch event and the dropped cache entry come from the rotation itself.
        await using var broker = await StartBrokerAsync("01:00:00");
        var client = broker.CreateClient();
        Assert.Equal("FAKE-v2", (await client.GetSecretAsync("aws/" + name)).Data["api_key"]);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var watch = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "aws/" + name } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;

        var rotation = client.RotateSecretAsync("aws/" + name);
        // AWS invokes the function with the version it staged AWSPENDING; the function's steps make it current.
        var played = await Moto.Boto3Async(new { op = "play_rotation_function", name, @string = """{"api_key":"FAKE-v3"}""" });
        var rotated = await rotation;

        Assert.Equal(((string)played["VersionId"]!, before, "aws-managed"), (rotated.Version, rotated.PreviousVersion, rotated.Strategy));
        var stages = (await Moto.Boto3Async(new { op = "describe", name }))["VersionIdsToStages"]!.AsObject();
        Assert.Contains("AWSCURRENT", stages[rotated.Version]!.AsArray().Select(s => (string)s!));
        Assert.Equal(["AWSPREVIOUS"], stages[before]!.AsArray().Select(s => (string)s!));
        Assert.Equal("FAKE-v3", await Boto3ApiKeyAsync(name));
        // Followed: the cached FAKE-v2 was dropped before the answer, and watchers got the new version.
        Assert.Equal("FAKE-v3", (await client.GetSecretAsync("aws/" + name)).Data["api_key"]);
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal(("aws/" + name, rotated.Version), (watch.ResponseStream.Current.Path, watch.ResponseStream.Current.Version));
    }

    [Fact]
    public async Task A_rotation_aws_runs_on_its_own_reaches_watchers_and_the_cache()
    {
        var name = $"{_run}/scheduled";
        await CreateRotatingSecretAsync(name);
        await using var broker = await StartBrokerAsync("00:00:00.200");
        var client = broker.CreateClient();
        var cached = await client.GetSecretAsync("aws/" + name);
        Assert.Equal("FAKE-v2", cached.Data["api_key"]);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var watch = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "aws/" + name } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;

        // AWS's schedule fires: RotateSecret with the configured function, outside the broker.
        var function = (string)(await Moto.Boto3Async(new { op = "setup_rotation_lambda", function = "rot-" + _run + "-own" }))["FunctionArn"]!;
        var rotated = (string)(await Moto.Boto3Async(new { op = "aws_rotation", name, lambda_arn = function, @string = """{"api_key":"FAKE-v3"}""" }))["VersionId"]!;

        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal(("aws/" + name, rotated), (watch.ResponseStream.Current.Path, watch.ResponseStream.Current.Version));
        var after = await client.GetSecretAsync("aws/" + name);
        Assert.Equal((rotated, "FAKE-v3"), (after.Version, after.Data["api_key"]));
    }
}
