using System.Text;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// moto with IAM authentication switched on: it recomputes every request's SigV4 signature with botocore
/// and checks the caller's IAM policy, so these tests prove the broker's signing over the wire and the
/// mapping of AWS's authentication and authorization failures.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsSecretsManagerAuthTests(AwsSecretsManagerAuthTests.AuthenticatingMoto moto) : IClassFixture<AwsSecretsManagerAuthTests.AuthenticatingMoto>
{
    [Fact]
    public async Task Requests_signed_with_the_readers_keys_pass_moto_signature_verification()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(moto.ReaderKeyId, moto.ReaderSecret));
        var client = broker.CreateClient();

        var secret = await client.GetSecretAsync($"aws/{moto.SecretName}");
        var batch = await client.BatchGetSecretsAsync([$"aws/{moto.SecretName}", $"aws/{moto.SecretName}-missing"]);

        Assert.Equal("s3cr3t-under-auth", secret.Data["password"]);
        Assert.Equal("s3cr3t-under-auth", batch[0].Secret.Data["password"]);
        Assert.Equal((int)StatusCode.NotFound, batch[1].Error.Code);
    }

    [Fact]
    public async Task Temporary_credentials_send_and_sign_their_session_token()
    {
        var configuration = moto.Configuration(moto.SessionKeyId, moto.SessionSecret);
        configuration["Broker:Mounts:0:SessionToken"] = moto.SessionToken;
        await using var broker = await BrokerHost.StartAsync(configuration);

        var secret = await broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}");

        Assert.Equal("s3cr3t-under-auth", secret.Data["password"]);
        broker.Logs.AssertNoneContain([moto.SessionToken, moto.SessionSecret]);
    }

    [Fact]
    public async Task Temporary_credentials_without_their_session_token_are_rejected()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(moto.SessionKeyId, moto.SessionSecret));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task An_action_the_IAM_policy_does_not_allow_is_PERMISSION_DENIED()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(moto.ReaderKeyId, moto.ReaderSecret));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().ListSecretsPageAsync("aws/auth"));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public async Task A_wrong_secret_key_fails_signature_verification_and_is_UNAVAILABLE_without_leaking_the_key()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(moto.ReaderKeyId, "wrong-secret-key-value"));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("SignatureDoesNotMatch", error.Status.Detail, StringComparison.Ordinal);
        broker.Logs.AssertNoneContain(["wrong-secret-key-value", moto.SecretName]);
    }

    [Fact]
    public async Task An_unknown_access_key_is_UNAVAILABLE()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration("AKIAUNKNOWNKEY000000", "whatever"));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task Readiness_is_serving_when_the_probe_is_signed_with_accepted_keys_that_may_not_ListSecrets()
    {
        // The reader's policy allows no ListSecrets: moto verifies the signature, then answers AccessDenied.
        var configuration = moto.Configuration(moto.ReaderKeyId, moto.ReaderSecret);
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        await using var broker = await BrokerHost.StartAsync(configuration);
        var health = HealthTests.HealthClient(broker);

        Assert.Equal(ServingStatus.Serving, await HealthTests.StatusAsync(health, "readiness"));
        Assert.Equal(200, (await broker.GetAsync("/healthz/ready")).Status);
        // The healthy probe's description is in the log line of the mount's state change.
        Assert.Contains(broker.Logs.Lines, line => line.Contains("Backend of mount aws (aws-sm) is up: reachable; ListSecrets not permitted", StringComparison.Ordinal));
        broker.Logs.AssertNoneContain([moto.ReaderSecret, "arn:aws"]);
    }

    [Theory]
    [InlineData(false, "SignatureDoesNotMatch")]
    [InlineData(true, "InvalidClientTokenId")]
    public async Task Readiness_is_not_serving_when_AWS_refuses_the_probes_credentials(bool unknownKey, string expectedError)
    {
        var configuration = unknownKey
            ? moto.Configuration("AKIAUNKNOWNKEY000000", "FAKE-unknown-secret-key")
            : moto.Configuration(moto.ReaderKeyId, "FAKE-wrong-secret-key");
        configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
        await using var broker = await BrokerHost.StartAsync(configuration);
        var health = HealthTests.HealthClient(broker);

        Assert.Equal(ServingStatus.NotServing, await HealthTests.StatusAsync(health, "readiness"));
        var (status, body) = await broker.GetAsync("/healthz/ready");
        Assert.Equal(503, status);
        Assert.Contains("AWS rejected the broker's credentials (", body, StringComparison.Ordinal);
        Assert.Contains(expectedError, body, StringComparison.Ordinal);
        Assert.DoesNotContain("FAKE-", body, StringComparison.Ordinal);
        broker.Logs.AssertNoneContain(["FAKE-wrong-secret-key", "FAKE-unknown-secret-key"]);
    }

    [Fact]
    public async Task A_broker_process_without_keys_in_its_configuration_signs_with_the_default_chains_environment_credentials()
    {
        // The real broker process, its mount naming no credentials and no region: both come from the
        // environment through AWSSDK.Core's default chain, and moto verifies the resulting signatures.
        using var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", """
            policies:
              - name: aws-reader
                appliesTo: { subjects: [aws-reader] }
                rules:
                  - paths: ["aws/**"]
                    capabilities: [read]
            """);
        const string token = "FAKE-aws-process-token";
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", directory.Path, "--urls", "http://127.0.0.1:0", "--Broker:Management:Urls=http://127.0.0.1:0",
             "--Kestrel:EndpointDefaults:Protocols=Http2",
             "--Broker:Auth:DevTokens:Tokens:0:Subject=aws-reader", $"--Broker:Auth:DevTokens:Tokens:0:Sha256={BrokerHost.Sha256Hex(token)}",
             "--Broker:Policy:File=policy.yaml", $"--Broker:Audit:Key={BrokerHost.TestAuditKey}",
             "--Broker:Mounts:0:Prefix=aws", "--Broker:Mounts:0:Type=aws-sm", $"--Broker:Mounts:0:ServiceUrl={moto.Url}", "--Broker:Mounts:0:MaxRetries=0"],
            new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Development",
                ["AWS_ACCESS_KEY_ID"] = moto.ReaderKeyId,
                ["AWS_SECRET_ACCESS_KEY"] = moto.ReaderSecret,
                ["AWS_SESSION_TOKEN"] = null,
                ["AWS_PROFILE"] = null,
                ["AWS_REGION"] = MotoServer.Region,
                ["AWS_DEFAULT_REGION"] = null,
                ["AWS_EC2_METADATA_DISABLED"] = "true",
                ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/credentials",
                ["AWS_CONFIG_FILE"] = "/nonexistent/config",
            });
        var address = await broker.WaitForListeningAddressAsync();
        var (client, channel) = SecretsBroker.Client.BrokerClientServiceCollectionExtensions.CreateClient(new SecretsBroker.Client.BrokerClientOptions
        {
            Address = address,
            Token = token,
        });
        using var _ = channel;

        var secret = await client.GetSecretAsync($"aws/{moto.SecretName}");

        Assert.Equal("s3cr3t-under-auth", secret.Data["password"]);
        Assert.Contains(broker.Output, line => line.Contains("credentials from default chain", StringComparison.Ordinal));
        Assert.DoesNotContain(broker.Output, line => line.Contains(moto.ReaderSecret, StringComparison.Ordinal) || line.Contains("s3cr3t-under-auth", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Expiring_profile_credentials_are_fetched_again_once_they_expire()
    {
        // A credential_process profile whose credentials expire two seconds after each run: the SDK must
        // run it again for a read after the expiry. moto verifies the signatures made with them.
        using var directory = new TestDirectory();
        var counter = Path.Combine(directory.Path, "runs");
        var script = directory.WriteFile("credentials.sh", $$"""
            echo run >> '{{counter}}'
            expires=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
            printf '{"Version":1,"AccessKeyId":"{{moto.ReaderKeyId}}","SecretAccessKey":"{{moto.ReaderSecret}}","Expiration":"%s"}' "$expires"
            """);
        var config = directory.WriteFile("config", $"[profile expiring]\ncredential_process = /bin/sh {script}\n");
        var configuration = moto.Configuration("unused", "unused");
        configuration.Remove("Broker:Mounts:0:AccessKeyId");
        configuration.Remove("Broker:Mounts:0:SecretAccessKey");
        configuration["Broker:Mounts:0:Profile"] = "expiring";
        configuration["Broker:Mounts:0:ProfilesLocation"] = config;
        // Both reads must reach AWS, so the cache in front of the mount is off.
        configuration["Broker:Mounts:0:Cache:Enabled"] = "false";
        await using var broker = await BrokerHost.StartAsync(configuration);
        var client = broker.CreateClient();

        var first = await client.GetSecretAsync($"aws/{moto.SecretName}");
        var runsAfterFirst = File.ReadAllLines(counter).Length;
        Assert.Equal("s3cr3t-under-auth", first.Data["password"]);

        // Read until a read needed the process again (once the credentials expired), however long a loaded machine
        // takes; every read on the way is signed with valid credentials.
        await Eventually.WaitUntilAsync(async () =>
        {
            var again = await client.GetSecretAsync($"aws/{moto.SecretName}");
            Assert.Equal("s3cr3t-under-auth", again.Data["password"]);
            return File.ReadAllLines(counter).Length > runsAfterFirst;
        }, TimeSpan.FromSeconds(60), "the credential process to run again after its credentials expired");
        broker.Logs.AssertNoneContain([moto.ReaderSecret]);
    }

    /// <summary>moto with an IAM reader and one secret set up while authentication is off, then switched on.</summary>
    public sealed class AuthenticatingMoto : IAsyncLifetime
    {
        private readonly MotoServer _moto = new();

        public Uri Url => _moto.Url;

        public string SecretName { get; } = $"auth/{Guid.NewGuid():N}/db";

        public string ReaderKeyId { get; private set; } = "";

        public string ReaderSecret { get; private set; } = "";

        public string SessionKeyId { get; private set; } = "";

        public string SessionSecret { get; private set; } = "";

        public string SessionToken { get; private set; } = "";

        public async Task InitializeAsync()
        {
            await _moto.InitializeAsync();
            var keys = await _moto.Boto3Async(new { op = "setup_iam_reader", user = "broker-reader" });
            ReaderKeyId = (string)keys["AccessKeyId"]!;
            ReaderSecret = (string)keys["SecretAccessKey"]!;
            SessionKeyId = (string)keys["SessionAccessKeyId"]!;
            SessionSecret = (string)keys["SessionSecretAccessKey"]!;
            SessionToken = (string)keys[nameof(SessionToken)]!;
            await _moto.Boto3Async(new { op = "create", name = SecretName, @string = """{"password":"s3cr3t-under-auth"}""" });
            using var http = new HttpClient();
            using var response = await http.PostAsync(new Uri(_moto.Url, "moto-api/reset-auth"), new StringContent("0", Encoding.UTF8));
            response.EnsureSuccessStatusCode();
        }

        public Task DisposeAsync() => _moto.DisposeAsync();

        public Dictionary<string, string?> Configuration(string accessKeyId, string secretAccessKey)
        {
            var configuration = _moto.MountConfiguration(maxRetries: 0);
            configuration["Broker:Mounts:0:AccessKeyId"] = accessKeyId;
            configuration["Broker:Mounts:0:SecretAccessKey"] = secretAccessKey;
            return configuration;
        }
    }
}
