using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// A mount pointed at the wrong region answers NOT_FOUND and empty listings while its readiness is fine (AWS
/// accepts the credentials everywhere): NOT_FOUND names the region and endpoint asked, and the broker logs at
/// start how many secrets each aws-sm mount can see. moto keeps one Secrets Manager per region, chosen by the
/// SigV4 credential scope, as AWS does.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsMountVisibilityTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private readonly string _run = "t" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task Not_found_names_the_region_and_endpoint_and_the_start_log_counts_the_secrets_each_mount_sees()
    {
        await moto.Boto3Async(new { op = "create", name = $"{_run}/a", @string = """{"password":"FAKE-visibility-a"}""" });
        await moto.Boto3Async(new { op = "create", name = $"{_run}/b", @string = """{"password":"FAKE-visibility-b"}""" });
        var configuration = moto.MountConfiguration();
        foreach (var (key, value) in moto.MountConfiguration(prefix: "elsewhere", index: 1))
        {
            configuration[key] = value;
        }
        // A region no other test writes to: the secrets above are not there.
        configuration["Broker:Mounts:1:Region"] = "ap-southeast-4";
        await using var broker = await BrokerHost.StartAsync(configuration);
        var client = broker.CreateClient();

        Assert.Equal("FAKE-visibility-a", (await client.GetSecretAsync($"aws/{_run}/a")).Data["password"]);
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"elsewhere/{_run}/a"));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("region ap-southeast-4", missing.Status.Detail, StringComparison.Ordinal);
        Assert.Contains($"endpoint {moto.Url.GetLeftPart(UriPartial.Authority)}", missing.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(_run, missing.Status.Detail, StringComparison.Ordinal);

        string[] lines = [];
        await Eventually.WaitUntilAsync(() => (lines = [.. broker.Logs.Lines.Where(l => l.Contains("secrets visible", StringComparison.Ordinal))]).Length >= 2,
            TimeSpan.FromSeconds(30), "a start-up line per aws-sm mount with the number of secrets it sees");
        var elsewhere = Assert.Single(lines, l => l.Contains("mount elsewhere:", StringComparison.Ordinal));
        Assert.StartsWith("Warning", elsewhere, StringComparison.Ordinal);
        Assert.Contains("no secrets visible in region ap-southeast-4", elsewhere, StringComparison.Ordinal);
        var aws = Assert.Single(lines, l => l.Contains("mount aws:", StringComparison.Ordinal));
        var count = int.Parse(System.Text.RegularExpressions.Regex.Match(aws, @"mount aws: (\d+)\+? secrets visible in region us-east-1").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(count >= 2, aws);
        broker.Logs.AssertNoneContain(["FAKE-visibility-a", $"{_run}/a"]);
    }
}
