using Grpc.Core;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// An aws-sm mount whose endpoint override is moto over TLS, presenting leaf + intermediate of a private
/// CA while the mount's CaCertificateFile holds only the root. boto3 seeds the secret through the same
/// server with AWS_CA_BUNDLE = the root, so botocore accepts the chain the broker must accept.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsEndpointTlsTests(AwsEndpointTlsTests.TlsMoto moto) : IClassFixture<AwsEndpointTlsTests.TlsMoto>
{
    [Fact]
    public async Task A_private_CA_root_file_is_enough_for_an_endpoint_that_presents_its_intermediate()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(moto.RootFile));

        var secret = await broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}");

        Assert.Equal("FAKE-over-tls", secret.Data["password"]);
        Assert.Contains(broker.Logs.Lines, l => l.Contains("TLS trust from CaCertificateFile", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_the_CA_file_the_machine_store_does_not_trust_the_private_CA_and_the_call_is_UNAVAILABLE()
    {
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(caFile: null));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task A_CA_file_of_another_root_is_UNAVAILABLE()
    {
        using var other = new TestCertificateChain("Another");
        using var directory = new TestDirectory();
        var otherRoot = directory.WriteFile("other-root.pem", other.RootPem);
        await using var broker = await BrokerHost.StartAsync(moto.Configuration(otherRoot));

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{moto.SecretName}"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    /// <summary>moto serving HTTPS with chain.pem (leaf + intermediate), one secret created through boto3 over TLS.</summary>
    public sealed class TlsMoto : IAsyncLifetime
    {
        private readonly TestCertificateChain _pki = new();
        private readonly TestDirectory _directory = new();
        private MotoServer? _moto;

        public string SecretName { get; } = $"tls/{Guid.NewGuid():N}/db";

        public string RootFile { get; private set; } = "";

        public async Task InitializeAsync()
        {
            var files = _pki.WriteServerFiles(_directory.Path);
            RootFile = files.RootFile;
            _moto = new MotoServer { Tls = (files.ChainFile, files.KeyFile), Boto3CaBundle = files.RootFile };
            await _moto.InitializeAsync();
            Assert.Equal("https", _moto.Url.Scheme);
            await _moto.Boto3Async(new { op = "create", name = SecretName, @string = """{"password":"FAKE-over-tls"}""" });
        }

        public async Task DisposeAsync()
        {
            if (_moto is not null)
            {
                await _moto.DisposeAsync();
            }
            _directory.Dispose();
            _pki.Dispose();
        }

        public Dictionary<string, string?> Configuration(string? caFile)
        {
            var configuration = _moto!.MountConfiguration(maxRetries: 0);
            if (caFile is not null)
            {
                configuration["Broker:Mounts:0:CaCertificateFile"] = caFile;
            }
            return configuration;
        }
    }
}
