using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// Readiness with an aws-sm mount: its probe is one signed ListSecrets call (MaxResults 1) against moto,
/// so a reachable Secrets Manager keeps the broker SERVING and an unreachable one makes it NOT_SERVING.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsSecretsManagerHealthTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private static Dictionary<string, string?> WithHealthSettings(Dictionary<string, string?> configuration)
    {
        // The aws mount is required, and every check probes again, so the test sees a change at once.
        configuration["Broker:Health:BackendsRequired"] = "true";
        configuration["Broker:Health:RequiredMounts:0"] = "aws";
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        return configuration;
    }

    [Fact]
    public async Task Readiness_is_serving_with_a_required_aws_sm_mount_whose_ListSecrets_probe_succeeds()
    {
        var name = $"health-{Guid.NewGuid():N}/db";
        await moto.Boto3Async(new { op = "create", name, @string = """{"password":"FAKE-health-probe-value"}""" });
        await using var broker = await BrokerHost.StartAsync(WithHealthSettings(moto.MountConfiguration()));
        var health = HealthTests.HealthClient(broker);

        Assert.Equal(ServingStatus.Serving, await HealthTests.StatusAsync(health, "readiness"));
        Assert.Equal(ServingStatus.Serving, await HealthTests.StatusAsync(health, "secretsbroker.v1.SecretsBroker"));
        var (status, body) = await broker.GetAsync("/healthz/ready");
        Assert.Equal(200, status);
        Assert.StartsWith("Healthy", body, StringComparison.Ordinal);
        // The healthy probe's description is in the log line of the mount's state change.
        Assert.Contains(broker.Logs.Lines, line => line.Contains("Backend of mount aws (aws-sm) is up: AWS Secrets Manager answered ListSecrets", StringComparison.Ordinal));
        Assert.DoesNotContain(name, body, StringComparison.Ordinal);
        broker.Logs.AssertNoneContain([name, "FAKE-health-probe-value"]);
    }

    [Fact]
    public async Task Readiness_is_not_serving_while_the_aws_sm_endpoint_is_unreachable_and_serving_once_it_answers()
    {
        // The port is reserved (bound, not listening): connections are refused, and no other process can take it.
        // Later the same port starts listening and forwards to a dedicated moto, which is stopped at the end.
        using var port = FreePort.Reserve();
        var configuration = WithHealthSettings(moto.MountConfiguration());
        configuration["Broker:Mounts:0:ServiceUrl"] = port.Url.ToString();
        configuration["Broker:Health:ProbeTimeout"] = "00:00:05";
        await using var broker = await BrokerHost.StartAsync(configuration);
        var health = HealthTests.HealthClient(broker);

        await Eventually.WaitUntilAsync(async () => await HealthTests.StatusAsync(health, "readiness") == ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "readiness NOT_SERVING while nothing listens at the aws-sm endpoint");
        var (status, body) = await broker.GetAsync("/healthz/ready");
        Assert.Equal(503, status);
        Assert.Contains("aws (aws-sm): the AWS Secrets Manager endpoint could not be reached", body, StringComparison.Ordinal);
        Assert.Equal(ServingStatus.Serving, await HealthTests.StatusAsync(health, ""));

        var dedicated = new MotoServer();
        try
        {
            await dedicated.InitializeAsync();
            await using (new TcpProxy(dedicated.Url, port))
            {
                await Eventually.WaitUntilAsync(async () => await HealthTests.StatusAsync(health, "readiness") == ServingStatus.Serving,
                    TimeSpan.FromSeconds(30), "readiness SERVING once moto answers at the aws-sm endpoint");
                Assert.Equal(200, (await broker.GetAsync("/healthz/ready")).Status);
            }
        }
        finally
        {
            await dedicated.DisposeAsync();
        }

        await Eventually.WaitUntilAsync(async () => await HealthTests.StatusAsync(health, "readiness") == ServingStatus.NotServing,
            TimeSpan.FromSeconds(30), "readiness NOT_SERVING again once moto is stopped");
    }
}
