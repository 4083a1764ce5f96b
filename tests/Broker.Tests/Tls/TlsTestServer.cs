using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// Real Kestrel over TLS on 127.0.0.1:0 presenting a <see cref="TestCertificateChain"/>'s leaf with its
/// intermediate (or, to show the client needs it, the leaf alone). <c>map</c> adds the routes.
/// </summary>
public sealed class TlsTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TlsTestServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>https://127.0.0.1:port/</summary>
    public Uri Address { get; }

    public static async Task<TlsTestServer> StartAsync(TestCertificateChain chain, Action<WebApplication> map, bool presentIntermediate = true)
    {
        // An empty content root: the test output folder holds the broker's appsettings.json.
        var contentRoot = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "secretsbroker-tests", "tls-empty-root")).FullName;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = contentRoot });
        var context = chain.ServerContext(presentIntermediate);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificateContext = context }),
        })));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TlsTestServer(app, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/') + "/"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
