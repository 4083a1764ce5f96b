using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>
/// Broker-driven rotation (generated strategy) of aws-sm secrets in moto's Secrets Manager, the stages read back with boto3
/// (not the broker's client). What AWS's own rotation leaves: the new version AWSCURRENT, the old one AWSPREVIOUS, no
/// AWSPENDING (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html). moto 5.2.1's
/// moto/secretsmanager/models.py, checked: put_secret_value with VersionStages=[AWSPENDING] adds the version without
/// touching AWSCURRENT (_add_secret: remove_version_stages_from_old_versions), and a repeated ClientRequestToken of a version
/// still AWSPENDING rewrites it (_check_with_existing_secrets_and_versions); update_secret_version_stage(AWSCURRENT, Move,
/// Remove) moves AWSPREVIOUS to the version AWSCURRENT left, as AWS does.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsRotationTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private readonly string _run = "r" + Guid.NewGuid().ToString("N")[..10];

    private Dictionary<string, string?> Configuration()
    {
        var settings = moto.MountConfiguration();
        settings["Broker:Policy:File"] = "policy.yaml";
        // Only this run's secrets: the scheduler's recovery pass lists the mount and must not touch other tests' secrets.
        settings["Broker:Rotation:0:Paths"] = $"aws/{_run}/**";
        settings["Broker:Rotation:0:Strategy"] = "generated";
        settings["Broker:Rotation:0:Fields:0"] = "api_key";
        settings["Broker:RotationEngine:ScheduleInterval"] = "00:00:01";
        return settings;
    }

    private async Task<string> CreateAsync(string name) =>
        (string)(await moto.Boto3Async(new { op = "create", name, @string = """{"api_key":"FAKE-old-api-key","owner":"team-alpha"}""" }))["VersionId"]!;

    /// <summary>Every version (deprecated ones included) and its stages, as boto3 lists them.</summary>
    private async Task<Dictionary<string, string[]>> StagesAsync(string name) =>
        (await moto.Boto3Async(new { op = "versions", name }))["Versions"]!.AsArray()
            .ToDictionary(v => (string)v!["VersionId"]!, v => v!["VersionStages"]!.AsArray().Select(s => (string)s!).Order().ToArray());

    private async Task<JsonObject> Boto3ValueAsync(string name, string stage)
    {
        var value = await moto.Boto3Async(new { op = "get", name, stage });
        return JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String((string)value["SecretStringB64"]!)))!.AsObject();
    }

    private TestDirectory Directory()
    {
        var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", RotationFixture.AwsPolicy);
        return directory;
    }

    [Fact]
    public async Task A_broker_rotation_leaves_what_awss_own_rotation_leaves()
    {
        var name = $"{_run}/api";
        var first = await CreateAsync(name);
        await using var broker = await BrokerHost.StartAsync(Configuration(), Directory());

        var rotated = await broker.CreateClient().RotateSecretAsync("aws/" + name);

        Assert.Equal((first, "generated"), (rotated.PreviousVersion, rotated.Strategy));
        var stages = await StagesAsync(name);
        Assert.Equal(2, stages.Count);
        Assert.Equal(["AWSCURRENT"], stages[rotated.Version]);
        Assert.Equal(["AWSPREVIOUS"], stages[first]);
        Assert.DoesNotContain(stages.Values, s => s.Contains("AWSPENDING"));
        var current = await Boto3ValueAsync(name, "AWSCURRENT");
        Assert.NotEqual("FAKE-old-api-key", (string)current["api_key"]!);
        Assert.Equal("team-alpha", (string)current["owner"]!);
        Assert.Equal("FAKE-old-api-key", (string)(await Boto3ValueAsync(name, "AWSPREVIOUS"))["api_key"]!);

        // A second rotation moves AWSPREVIOUS on: still exactly one current, one previous, no pending.
        var again = await broker.CreateClient().RotateSecretAsync("aws/" + name);
        stages = await StagesAsync(name);
        Assert.Equal(["AWSCURRENT"], stages[again.Version]);
        Assert.Equal(["AWSPREVIOUS"], stages[rotated.Version]);
        Assert.Empty(stages[first]);
        Assert.DoesNotContain(stages.Values, s => s.Contains("AWSPENDING"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task A_broker_killed_after_a_step_leaves_awspending_and_the_restarted_broker_finishes_it(int step)
    {
        var name = $"{_run}/crash{step}";
        var first = await CreateAsync(name);
        using var directory = Directory();

        await using (var crashing = RotationFixture.StartExternalBroker(directory, Configuration(), crashAfterStep: step))
        {
            var client = RotationFixture.Client(await crashing.WaitForListeningAddressAsync());
            var error = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync("aws/" + name));
            Assert.Contains(error.StatusCode, (StatusCode[])[StatusCode.Unavailable, StatusCode.Internal, StatusCode.Cancelled]);
            Assert.Equal(137, await crashing.WaitForExitAsync());
        }
        // What the crash left, as boto3 sees it: a second version staged AWSPENDING.
        var left = await StagesAsync(name);
        Assert.Equal(2, left.Count);
        var pending = Assert.Single(left, v => v.Value.Contains("AWSPENDING")).Key;
        Assert.NotEqual(first, pending);
        Assert.Equal(step == 1 ? ["AWSCURRENT"] : ["AWSPREVIOUS"], left[first]);

        await using var restarted = RotationFixture.StartExternalBroker(directory, Configuration());
        await restarted.WaitForListeningAddressAsync();
        // The restarted broker's start-up recovery finishes the rotation on its own: no caller asks.
        await Eventually.WaitUntilAsync(async () => !(await StagesAsync(name)).Values.Any(s => s.Contains("AWSPENDING")),
            TimeSpan.FromSeconds(60), "AWSPENDING cleared by recovery");
        var stages = await StagesAsync(name);
        Assert.Equal(2, stages.Count);
        Assert.Equal(["AWSCURRENT"], stages[pending]);
        Assert.Equal(["AWSPREVIOUS"], stages[first]);
        Assert.NotEqual("FAKE-old-api-key", (string)(await Boto3ValueAsync(name, "AWSCURRENT"))["api_key"]!);
    }
}
