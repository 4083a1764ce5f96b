using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// Where HTTP/1.1 is served (docs/http.md). Kestrel serves either the addresses of <c>urls</c> or its configured endpoints, never
/// both, and one protocol set per endpoint: so when HTTP/1.1 is wanted, every address of <c>urls</c> becomes a named Kestrel
/// endpoint (https with HTTP/1.1 and HTTP/2 by ALPN, http with the endpoint defaults: h2c) and each <c>Broker:Http:Urls</c>
/// address an HTTP/1.1-only endpoint. Endpoints an operator configured under <c>Kestrel:Endpoints</c> are kept as they are.
/// </summary>
public sealed partial class HttpListeners
{
    internal const string Http1EndpointPrefix = "BrokerHttp1-";
    // Kestrel binds configured endpoints in key order: the gRPC ones ("BrokerGrpc-") before the HTTP/1.1 ones, so the first
    // "Now listening on" line is still the gRPC port's.
    private const string UrlEndpointPrefix = "BrokerGrpc-";
    private readonly List<ListenOptions> _http1 = [];

    /// <summary>The bound cleartext HTTP/1.1 addresses (with their real ports once the server started).</summary>
    public IReadOnlyList<Uri> Http1Addresses
    {
        get
        {
            lock (_http1)
            {
                return [.. _http1.Select(l => new Uri($"http://{l.IPEndPoint}"))];
            }
        }
    }

    /// <summary>Adds the endpoint configuration described above; nothing when no HTTP/1.1 is wanted.</summary>
    internal static void Configure(IHostApplicationBuilder builder, IWebHostBuilder webHost, HttpOptions options)
    {
        var listeners = new HttpListeners();
        builder.Services.AddSingleton(listeners);
        builder.Services.AddHostedService<ListeningLog>();
        var configuration = builder.Configuration;
        var http1 = Observability.SideServer.SplitUrls(options.Urls).ToArray();
        var operatorEndpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
        var urls = operatorEndpoints ? [] : Observability.SideServer.SplitUrls(configuration[WebHostDefaults.ServerUrlsKey]).ToArray();
        var tls = options.Http1OnTls && urls.Any(u => u.StartsWith("https:", StringComparison.OrdinalIgnoreCase));
        if (http1.Length == 0 && !tls)
        {
            return;
        }
        var endpoints = new Dictionary<string, string?>();
        for (var i = 0; i < urls.Length; i++)
        {
            endpoints[$"Kestrel:Endpoints:{UrlEndpointPrefix}{i}:Url"] = urls[i];
            if (options.Http1OnTls && urls[i].StartsWith("https:", StringComparison.OrdinalIgnoreCase))
            {
                endpoints[$"Kestrel:Endpoints:{UrlEndpointPrefix}{i}:Protocols"] = nameof(HttpProtocols.Http1AndHttp2);
            }
        }
        for (var i = 0; i < http1.Length; i++)
        {
            endpoints[$"Kestrel:Endpoints:{Http1EndpointPrefix}{i}:Url"] = http1[i];
            endpoints[$"Kestrel:Endpoints:{Http1EndpointPrefix}{i}:Protocols"] = nameof(HttpProtocols.Http1);
        }
        // The addresses now live in Kestrel:Endpoints; leaving urls set would only log that Kestrel overrides them.
        endpoints[WebHostDefaults.ServerUrlsKey] = "";
        configuration.AddInMemoryCollection(endpoints);
        webHost.ConfigureKestrel(kestrel =>
        {
            for (var i = 0; i < http1.Length; i++)
            {
                kestrel.ConfigurationLoader?.Endpoint(Http1EndpointPrefix + i, endpoint =>
                {
                    lock (listeners._http1)
                    {
                        listeners._http1.Add(endpoint.ListenOptions);
                    }
                });
            }
        });
    }

    /// <summary>Logs the bound HTTP/1.1 addresses once the server listens (Kestrel's own lines do not tell them from the h2c ones).</summary>
    private sealed partial class ListeningLog(HttpListeners listeners, IHostApplicationLifetime lifetime, ILogger<HttpListeners> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() =>
            {
                if (listeners.Http1Addresses.Count > 0)
                {
                    LogListening(logger, string.Join(' ', listeners.Http1Addresses));
                }
            });
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "HTTP/1.1 JSON API listening on {Addresses}")]
        private static partial void LogListening(ILogger logger, string addresses);
    }
}
