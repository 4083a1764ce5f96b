using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// The broker's Redis connection to a real redis-server over TLS (<c>--tls-port</c>), whose certificate file
/// holds leaf + intermediate (Redis loads it with SSL_CTX_use_certificate_chain_file and sends both) while
/// <c>Broker:Redis:CaCertificateFile</c> holds only the root; redis-cli with the same CA file is the cross-check.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RedisTlsTests : IAsyncLifetime
{
    private readonly TestCertificateChain _pki = new();
    private readonly TestDirectory _directory = new();
    private (string RootFile, string ChainFile, string LeafOnlyFile, string KeyFile) _files;
    private RedisServer? _redis;
    private int _port;

    public async Task InitializeAsync()
    {
        _files = _pki.WriteServerFiles(_directory.Path);
        _redis = await RedisServer.StartAsync(tlsArguments:
            ["--tls-cert-file", _files.ChainFile, "--tls-key-file", _files.KeyFile, "--tls-ca-cert-file", _files.RootFile, "--tls-auth-clients", "no"]);
        _port = _redis.Port;
    }

    public async Task DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
        _directory.Dispose();
        _pki.Dispose();
    }

    [Fact]
    public async Task The_broker_connects_to_a_Redis_that_presents_its_intermediate_with_only_the_root_in_the_CA_file()
    {
        var cli = await ExternalProcess.RunAsync("redis-cli",
            ["--tls", "--cacert", _files.RootFile, "-h", "127.0.0.1", "-p", _port.ToString(System.Globalization.CultureInfo.InvariantCulture), "PING"],
            timeout: TimeSpan.FromSeconds(30));
        Assert.Equal("PONG", cli.StandardOutput.Trim());
        await using var broker = await BrokerHost.StartAsync(Configuration(_files.RootFile));

        var redis = await broker.Services.GetRequiredService<RedisConnection>().GetAsync();

        Assert.True(redis.IsConnected);
        await redis.GetDatabase().PingAsync();
    }

    [Fact]
    public async Task Without_the_CA_file_the_private_CA_is_not_trusted_and_the_broker_runs_without_Redis()
    {
        await using var broker = await BrokerHost.StartAsync(Configuration(caFile: null));

        var redis = await broker.Services.GetRequiredService<RedisConnection>().GetAsync();

        Assert.False(redis.IsConnected);
        Assert.Contains(broker.Logs.Lines, l => l.Contains("Redis is not reachable at start", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false, "Broker:Redis:CaCertificateFile needs ssl=true in Broker:Redis:Configuration")]
    [InlineData(true, "Broker:Redis:CaCertificateFile: the CA file")]
    public async Task A_CA_file_without_ssl_or_that_cannot_be_read_stops_the_broker_at_start(bool ssl, string message)
    {
        var configuration = Configuration(ssl ? Path.Combine(_directory.Path, "absent.pem") : _files.RootFile);
        configuration["Broker:Redis:Configuration"] = $"127.0.0.1:{_port},ssl={(ssl ? "true" : "false")}";

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => BrokerHost.StartAsync(configuration));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    private Dictionary<string, string?> Configuration(string? caFile)
    {
        var secrets = _directory.WriteFile("local.yaml", "secrets:\n  demo/db: { data: { password: FAKE-local } }\n");
        var configuration = new Dictionary<string, string?>
        {
            ["Broker:Redis:Configuration"] = $"127.0.0.1:{_port},ssl=true",
            ["Broker:Mounts:0:Prefix"] = "kv",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = secrets,
            ["Broker:Cache:Encryption:NameKey"] = CacheTestSettings.TestKey("names"),
            ["Broker:Cache:Encryption:Keys:0:Id"] = "k1",
            ["Broker:Cache:Encryption:Keys:0:Secret"] = CacheTestSettings.TestKey("k1"),
            ["Broker:Cache:Encryption:Keys:0:Active"] = "true",
        };
        if (caFile is not null)
        {
            configuration["Broker:Redis:CaCertificateFile"] = caFile;
        }
        return configuration;
    }
}
