using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// The real broker on Kestrel at 127.0.0.1:0 (HTTP/2 plaintext), composed exactly as Program.cs does,
/// with test configuration layered on top and every log line captured.
/// </summary>
public sealed class BrokerHost : IAsyncDisposable
{
    /// <summary>The dev token every test host accepts (its SHA-256 is configured).</summary>
    public const string TestToken = "FAKE-test-token-alpha";

    /// <summary>The audit key of every test host: base64 of 32 obviously fake bytes.</summary>
    public static readonly string TestAuditKey = Convert.ToBase64String("FAKE-test-audit-key-32-bytes!!!!"u8);

    /// <summary>The default test policy: the test token's identity may do anything anywhere.</summary>
    public const string AllowTestAlphaEverything = """
        policies:
          - name: test-alpha-everything
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["**"]
                capabilities: [read, list, issue, renew, revoke, watch]
        """;

    private readonly WebApplication _app;
    private readonly List<GrpcChannel> _channels = [];
    private TestPki? _tls;

    private BrokerHost(WebApplication app, Uri address, CapturedLogs logs, TestDirectory directory)
    {
        _app = app;
        Address = address;
        Logs = logs;
        Directory = directory;
    }

    public Uri Address { get; }

    public CapturedLogs Logs { get; }

    /// <summary>The host's content root: a temporary folder for secrets files and the like.</summary>
    public TestDirectory Directory { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Starts a broker. <paramref name="configuration"/> uses configuration keys ("Broker:Mounts:0:Prefix" ...);
    /// <paramref name="configureServices"/> may add services (test backends) before the host is built.
    /// </summary>
    public static async Task<BrokerHost> StartAsync(
        IReadOnlyDictionary<string, string?> configuration,
        TestDirectory? directory = null,
        Action<WebApplicationBuilder>? configureServices = null,
        string environment = "Development",
        TestPki? tls = null)
    {
        directory ??= new TestDirectory();
        if (!configuration.ContainsKey("Broker:Policy:File"))
        {
            directory.WriteFile("allow-test-alpha.yaml", AllowTestAlphaEverything);
        }
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = environment,
            ContentRootPath = directory.Path,
        });
        builder.WebHost.UseUrls(tls is null ? "http://127.0.0.1:0" : "https://127.0.0.1:0");
        if (tls is not null)
        {
            using var server = tls.IssueServer();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Kestrel:Certificates:Default:Path"] = directory.WriteFile("server.crt", server.ExportCertificatePem()),
                ["Kestrel:Certificates:Default:KeyPath"] = directory.WriteFile("server.key", server.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem()),
            });
        }
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
            ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "test-alpha",
            ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = Sha256Hex(TestToken),
            ["Broker:Auth:DevTokens:Tokens:0:Attributes:team"] = "alpha",
            ["Broker:Policy:File"] = "allow-test-alpha.yaml",
            ["Broker:Audit:Key"] = TestAuditKey,
            ["Broker:Audit:SpoolDirectory"] = "audit-spool",
            // Every test host gets its own free management port (metrics, HTTP health) instead of 9464.
            ["Broker:Management:Urls"] = "http://127.0.0.1:0",
        });
        builder.Configuration.AddInMemoryCollection(configuration);
        var logs = new CapturedLogs();
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Trace);
        builder.AddBroker();
        configureServices?.Invoke(builder);

        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        // The gRPC address: the one address that is not a cleartext HTTP/1.1 listener (Broker:Http:Urls, docs/http.md).
        var http1 = app.Services.GetRequiredService<global::SecretsBroker.Broker.Http.HttpListeners>().Http1Addresses;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Single(a => !http1.Contains(new Uri(a)));
        return new BrokerHost(app, new Uri(address), logs, directory) { _tls = tls };
    }

    /// <summary>A client for this host; <paramref name="token"/> null sends no credentials.</summary>
    public BrokerClient CreateClient(string? token = TestToken, int maxAttempts = 1, X509Certificate2? clientCertificate = null)
    {
        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = Address,
            Token = token,
            MaxAttempts = maxAttempts,
            DefaultTimeout = TimeSpan.FromSeconds(30),
            ClientCertificate = clientCertificate,
            TrustedCaCertificates = _tls is null ? null : [_tls.Authority],
        });
        lock (_channels)
        {
            _channels.Add(channel);
        }
        return client;
    }

    /// <summary>The log levels the broker ships with (its appsettings.json), for tests about what production logs.</summary>
    public static Dictionary<string, string?> ShippedLogLevels()
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryLayout.Root, "services/Broker/appsettings.json")));
        return document.RootElement.GetProperty("Logging").GetProperty("LogLevel").EnumerateObject()
            .ToDictionary(p => $"Logging:LogLevel:{p.Name}", p => (string?)p.Value.GetString());
    }

    public static string Sha256Hex(string token) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Dispose();
    }
}
