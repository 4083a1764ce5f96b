using Amazon.Runtime.CredentialManagement;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The mount's endpoint against botocore's own answer for the same settings (boto3_helper.py
/// resolve_endpoints: the URL botocore sends ListSecrets to, with the request stopped before it leaves):
/// every partition with and without FIPS and dual-stack, and the precedence of ServiceUrl,
/// AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL, the profile's endpoint_url and
/// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS. Where the broker deliberately differs (it refuses what botocore guesses),
/// the test says so.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsEndpointResolverTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private static readonly string[] Regions =
        ["us-east-1", "eu-west-1", "ap-southeast-7", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1"];

    [Fact]
    public async Task Every_partition_with_and_without_FIPS_and_dual_stack_resolves_as_botocore_does()
    {
        var cases = (from region in Regions from fips in new[] { false, true } from dualStack in new[] { false, true }
                     select new EndpointCase(region, Fips: fips, DualStack: dualStack)).ToList();

        var botocore = await BotocoreAsync(cases);

        var skipped = 0;
        for (var i = 0; i < cases.Count; i++)
        {
            if (botocore[i].Error == "EndpointVariantError")
            {
                // botocore's legacy endpoints.json has no dual-stack variant in aws-iso-e and aws-iso-f and refuses to build
                // the client; the rule set (which the broker follows, as the other SDKs do) gives secretsmanager.<region>.<dualStackDnsSuffix>.
                Assert.True(cases[i].DualStack == true && cases[i].Region is "eu-isoe-west-1" or "us-isof-south-1", $"botocore refused {cases[i]}");
                skipped++;
                continue;
            }
            Assert.Equal(botocore[i].Url, Resolve(cases[i]).ToString());
        }
        Assert.Equal(4, skipped);
    }

    [Fact]
    public async Task Configured_endpoints_and_flags_take_precedence_as_in_botocore()
    {
        using var directory = new TestDirectory();
        var profileConfig = directory.WriteFile("config", "[default]\nendpoint_url = http://profile.example.test:4566\n");
        var profile = new CredentialProfile("default", new CredentialProfileOptions()) { EndpointUrl = "http://profile.example.test:4566" };
        const string Service = AwsEndpointResolver.ServiceEndpointVariable, Global = AwsEndpointResolver.GlobalEndpointVariable;
        EndpointCase[] cases =
        [
            new("us-east-1", Env: new() { [Global] = "http://global.example.test:4566" }),
            new("us-east-1", Env: new() { [Global] = "http://global.example.test:4566", [Service] = "http://sm.example.test:4566" }),
            new("us-east-1", ServiceUrl: "http://explicit.example.test:1", Env: new() { [Global] = "http://global.example.test:4566", [Service] = "http://sm.example.test:4566" }),
            new("us-east-1", Env: new() { [Global] = "http://global.example.test:4566", ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true" }),
            new("us-east-1", ServiceUrl: "http://explicit.example.test:1", Env: new() { ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true" }),
            new("us-gov-east-1", Env: new() { ["AWS_USE_FIPS_ENDPOINT"] = "true" }),
            new("us-gov-east-1", Fips: false, Env: new() { ["AWS_USE_FIPS_ENDPOINT"] = "true" }),
            new("cn-northwest-1", Env: new() { ["AWS_USE_DUALSTACK_ENDPOINT"] = "true", ["AWS_USE_FIPS_ENDPOINT"] = "true" }),
            // FIPS from the environment does not apply to a custom endpoint: botocore uses the endpoint (the broker warns).
            new("us-east-1", Env: new() { ["AWS_USE_FIPS_ENDPOINT"] = "true", [Service] = "http://sm.example.test:4566" }),
            new("us-east-1", Env: new() { ["AWS_CONFIG_FILE"] = profileConfig }, Profile: profile),
            new("us-east-1", Env: new() { ["AWS_CONFIG_FILE"] = profileConfig, [Global] = "http://global.example.test:4566" }, Profile: profile),
        ];

        var botocore = await BotocoreAsync(cases);

        for (var i = 0; i < cases.Length; i++)
        {
            Assert.True(botocore[i].Url is not null, $"botocore refused {cases[i]}: {botocore[i].Error}");
            Assert.Equal(botocore[i].Url, Resolve(cases[i]).ToString());
        }
    }

    [Theory]
    [InlineData("xx-mars-1", null, null, null, "'Region' xx-mars-1 belongs to no AWS partition this broker knows")]
    [InlineData("us-east-1", "http://127.0.0.1:5000", true, null, "'UseFipsEndpoint' and 'UseDualStackEndpoint' cannot be combined with a custom endpoint ('ServiceUrl')")]
    [InlineData("us-east-1", null, null, "AWS_USE_FIPS_ENDPOINT=yes", "the environment variable AWS_USE_FIPS_ENDPOINT must be true or false")]
    [InlineData("us-east-1", null, null, "AWS_ENDPOINT_URL=http://proxy.example.test/secretsmanager", "AWS_ENDPOINT_URL must be an absolute http(s) URL without a path or query")]
    public void What_the_broker_cannot_honour_is_refused_with_a_message_naming_the_setting(string region, string? serviceUrl, bool? fips, string? variable, string message)
    {
        var environment = new FakeAwsEnvironment(variable is null ? [] : new() { [variable.Split('=')[0]] = variable.Split('=', 2)[1] });
        var failures = new List<string>();

        var endpoint = AwsEndpointResolver.Resolve(new AwsSecretsManagerOptions { ServiceUrl = serviceUrl, UseFipsEndpoint = fips }, region, environment, null, failures, []);

        Assert.Null(endpoint);
        Assert.StartsWith(message, Assert.Single(failures), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broker_whose_mount_names_no_endpoint_uses_AWS_ENDPOINT_URL_SECRETS_MANAGER()
    {
        var name = $"endpoint{Guid.NewGuid():N}/db";
        await moto.Boto3Async(new { op = "create", name, @string = """{"password":"FAKE-from-env-endpoint"}""" });
        var configuration = moto.MountConfiguration();
        configuration.Remove("Broker:Mounts:0:ServiceUrl");
        var environment = new FakeAwsEnvironment(new() { [AwsEndpointResolver.ServiceEndpointVariable] = moto.Url.ToString(), [AwsEndpointResolver.GlobalEndpointVariable] = "http://127.0.0.1:9/" });

        await using var broker = await BrokerHost.StartAsync(configuration, configureServices: b => b.Services.AddSingleton<AwsEnvironment>(environment));
        var secret = await broker.CreateClient().GetSecretAsync($"aws/{name}");

        Assert.Equal("FAKE-from-env-endpoint", secret.Data["password"]);
        Assert.Contains(broker.Logs.Lines, l => l.Contains($"(from {AwsEndpointResolver.ServiceEndpointVariable})", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_region_of_no_known_partition_stops_the_broker_at_start()
    {
        var configuration = moto.MountConfiguration();
        configuration.Remove("Broker:Mounts:0:ServiceUrl");
        configuration["Broker:Mounts:0:Region"] = "xx-mars-1";

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            BrokerHost.StartAsync(configuration, configureServices: b => b.Services.AddSingleton<AwsEnvironment>(new FakeAwsEnvironment([]))));

        Assert.Contains("'Region' xx-mars-1 belongs to no AWS partition this broker knows", error.Message, StringComparison.Ordinal);
    }

    private static Uri Resolve(EndpointCase c)
    {
        var failures = new List<string>();
        var endpoint = AwsEndpointResolver.Resolve(new AwsSecretsManagerOptions { ServiceUrl = c.ServiceUrl, UseFipsEndpoint = c.Fips, UseDualStackEndpoint = c.DualStack },
            c.Region, new FakeAwsEnvironment(c.Env ?? []), c.Profile, failures, []);
        Assert.True(endpoint is not null, $"{c}: {string.Join("; ", failures)}");
        return endpoint.Url;
    }

    private async Task<List<(string? Url, string? Error)>> BotocoreAsync(IReadOnlyList<EndpointCase> cases)
    {
        var answer = await moto.Boto3Async(new
        {
            op = "resolve_endpoints",
            cases = cases.Select(c =>
            {
                var json = new Dictionary<string, object?> { ["region"] = c.Region, ["env"] = c.Env ?? [] };
                if (c.Fips is { } fips)
                {
                    json["fips"] = fips;
                }
                if (c.DualStack is { } dualStack)
                {
                    json["dualstack"] = dualStack;
                }
                if (c.ServiceUrl is { } url)
                {
                    json["endpoint_url"] = url;
                }
                return json;
            }).ToList(),
        });
        return answer["Results"]!.AsArray().Select(r => ((string?)r!["url"], (string?)r["error"])).ToList();
    }

    private sealed record EndpointCase(string Region, bool? Fips = null, bool? DualStack = null, string? ServiceUrl = null,
        Dictionary<string, string>? Env = null, CredentialProfile? Profile = null);
}

/// <summary>An environment of its own for a broker under test; the profile files are not read.</summary>
internal sealed class FakeAwsEnvironment(Dictionary<string, string> variables) : AwsEnvironment
{
    public override string? Variable(string name) => variables.GetValueOrDefault(name);

    public override CredentialProfile? Profile(string name, string? profilesLocation) => null;
}
