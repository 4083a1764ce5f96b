using System.Text;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// moto with IAM authentication switched on: it recomputes every request's SigV4 signature with botocore
/// and checks the caller's IAM policy, so these tests prove the broker's signing over the wire and the
/// mapping of AWS's authentication and authorization failures.
/// </summary>
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

    /// <summary>moto with an IAM reader and one secret set up while authentication is off, then switched on.</summary>
    public sealed class AuthenticatingMoto : IAsyncLifetime
    {
        private readonly MotoServer _moto = new();

        public string SecretName { get; } = $"auth/{Guid.NewGuid():N}/db";

        public string ReaderKeyId { get; private set; } = "";

        public string ReaderSecret { get; private set; } = "";

        public async Task InitializeAsync()
        {
            await _moto.InitializeAsync();
            var keys = await _moto.Boto3Async(new { op = "setup_iam_reader", user = "broker-reader" });
            ReaderKeyId = (string)keys["AccessKeyId"]!;
            ReaderSecret = (string)keys["SecretAccessKey"]!;
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
