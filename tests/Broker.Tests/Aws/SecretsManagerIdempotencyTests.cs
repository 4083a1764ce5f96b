using System.Net;
using System.Text.Json;
using SecretsBroker.Broker.Backends.Aws;
using static SecretsBroker.Broker.Tests.Aws.ScriptedSecretsManager;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// Every Secrets Manager write carries a ClientRequestToken made once per logical write (botocore's
/// idempotency-token autopopulation), so a write whose answer is lost after moto acted is retried with
/// the same token and moto, which implements AWS's token rules, makes one version, not two.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SecretsManagerIdempotencyTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private readonly string _run = "idem" + Guid.NewGuid().ToString("N")[..10];

    [Theory]
    [InlineData("CreateSecret", 1)]
    [InlineData("PutSecretValue", 2)]
    [InlineData("UpdateSecret", 2)]
    [InlineData("RotateSecret", 2)]
    public async Task A_write_whose_answer_is_lost_is_retried_with_the_same_token_and_makes_one_version(string operation, int expectedVersions)
    {
        var name = $"{_run}/{operation}";
        if (operation != "CreateSecret")
        {
            await moto.Boto3Async(new { op = "create", name, @string = "FAKE-first" });
        }
        using var network = new LosingAnswersHandler(operation, answersToLose: 1);
        using var http = SecretsManagerHttp.CreateClient(
            new AwsSecretsManagerOptions { MaxRetries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(5) }, MotoServer.Region,
            new StaticAwsCredentialSource(new AwsCredentials(MotoServer.AccessKeyId, MotoServer.SecretAccessKey)), TimeProvider.System,
            primaryHandler: network);
        var client = new SecretsManagerClient(http, moto.Url);

        var written = operation switch
        {
            "CreateSecret" => await client.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = "FAKE-created" }),
            "PutSecretValue" => await client.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = "FAKE-second" }),
            "UpdateSecret" => await client.UpdateSecretAsync(new UpdateSecretRequest { SecretId = name, SecretString = "FAKE-updated" }),
            _ => await client.RotateSecretAsync(new RotateSecretRequest { SecretId = name, RotateImmediately = false }),
        };

        var attempts = network.Sent.Where(s => s.Target == "secretsmanager." + operation).Select(s => s.Body).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.Equal(attempts[0], attempts[1]);
        var token = ClientRequestToken(attempts[0]);
        Assert.True(Guid.TryParseExact(token, "D", out _), $"not a UUID: {token}");
        Assert.Equal(token, written.VersionId);
        var versions = (await moto.Boto3Async(new { op = "versions", name }))["Versions"]!.AsArray();
        Assert.Equal(expectedVersions, versions.Count);
        Assert.Contains(versions, v => (string)v!["VersionId"]! == token);
    }

    [Fact]
    public async Task Each_logical_write_gets_its_own_token_and_a_token_given_by_the_caller_is_sent_as_is()
    {
        var script = new ScriptedHandler(Ok("""{"ARN":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x","Name":"x","VersionId":"v"}"""));
        var client = ScriptedSecretsManager.Client(script, maxRetries: 0);
        const string given = "FAKE-caller-token-0000000000000000000000";

        await client.PutSecretValueAsync(new PutSecretValueRequest { SecretId = "x", SecretString = "FAKE-a" });
        await client.PutSecretValueAsync(new PutSecretValueRequest { SecretId = "x", SecretString = "FAKE-a" });
        await client.UpdateSecretAsync(new UpdateSecretRequest { SecretId = "x", SecretString = "FAKE-b", ClientRequestToken = given });

        var tokens = script.Requests.Select(r => ClientRequestToken(r.Body)).ToList();
        Assert.NotEqual(tokens[0], tokens[1]);
        Assert.Equal(given, tokens[2]);
        Assert.Equal("secretsmanager.UpdateSecret", script.Requests[2].Target);
    }

    private static string ClientRequestToken(string body) =>
        JsonDocument.Parse(body).RootElement.GetProperty("ClientRequestToken").GetString()!;

    /// <summary>
    /// The network to moto, losing the answer to the first <c>answersToLose</c> calls of one operation after
    /// moto handled them (the connection drops while the answer is on its way), as a retry bug needs.
    /// </summary>
    private sealed class LosingAnswersHandler(string operation, int answersToLose) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _toLose = answersToLose;

        public List<(string Target, string Body)> Sent { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var target = request.Headers.GetValues("X-Amz-Target").Single();
            var body = await request.Content!.ReadAsStringAsync(cancellationToken);
            lock (Sent)
            {
                Sent.Add((target, body));
            }
            var response = await base.SendAsync(request, cancellationToken);
            if (target == "secretsmanager." + operation && response.StatusCode == HttpStatusCode.OK && Interlocked.Decrement(ref _toLose) >= 0)
            {
                response.Dispose();
                throw new HttpRequestException("the connection was reset before the answer arrived (test)");
            }
            return response;
        }
    }
}
