using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// The management port: its own small Kestrel server (HTTP/1.1 only), so metrics and HTTP health are
/// never served on the gRPC port and the gRPC endpoints never on this one. Serves
/// <c>GET /metrics</c> (Prometheus text format), <c>GET /healthz/live</c> and <c>GET /healthz/ready</c>
/// (200 when healthy or degraded, 503 when unhealthy). If the port cannot be bound, the broker goes on
/// serving gRPC and logs an error (Prometheus then reports the target down).
/// </summary>
public sealed partial class ManagementServer(
    IServiceProvider services,
    IOptions<ManagementOptions> options,
    IHostEnvironment environment,
    ILoggerFactory loggerFactory,
    ILogger<ManagementServer> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>The addresses the management server listens on, once started (empty when it is off or could not bind).</summary>
    public IReadOnlyList<Uri> Addresses { get; private set; } = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var urls = SideServer.SplitUrls(settings.Urls).ToArray();
        if (urls.Length == 0)
        {
            LogDisabled();
            return;
        }

        var builder = SideServer.CreateBuilder(environment, loggerFactory, urls);
        var app = builder.Build();

        // The exporter and the health checks live in the broker's container, not in this small one.
        var meterProvider = services.GetRequiredService<MeterProvider>();
        var health = services.GetRequiredService<HealthCheckService>();
        app.MapPrometheusScrapingEndpoint(settings.MetricsPath, meterProvider, configureBranchedPipeline: null, optionsName: null);
        app.MapGet("/healthz/live", context => WriteHealthAsync(context, health, HealthNames.LiveTag));
        app.MapGet("/healthz/ready", context => WriteHealthAsync(context, health, HealthNames.ReadyTag));

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException)
        {
            LogBindFailed(string.Join(';', urls), ex.GetType().Name, ex.Message);
            await app.DisposeAsync().ConfigureAwait(false);
            return;
        }
        _app = app;
        Addresses = [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];
        LogListening(string.Join(' ', Addresses), settings.MetricsPath);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task WriteHealthAsync(HttpContext context, HealthCheckService health, string tag)
    {
        var report = await health.CheckHealthAsync(r => r.Tags.Contains(tag), context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        var text = new StringBuilder().Append(report.Status).Append('\n');
        foreach (var (name, entry) in report.Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(": ").Append(entry.Status);
            if (!string.IsNullOrEmpty(entry.Description))
            {
                text.Append(" - ").Append(entry.Description);
            }
            text.Append('\n');
        }
        await context.Response.WriteAsync(text.ToString(), context.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Management server listening on {Addresses} (metrics at {MetricsPath}, health at /healthz/live and /healthz/ready)")]
    private partial void LogListening(string addresses, string metricsPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "Management server is off (Broker:Management:Urls is empty): no /metrics and no HTTP health")]
    private partial void LogDisabled();

    [LoggerMessage(Level = LogLevel.Error, Message = "Management server could not listen on {Urls} ({ExceptionType}: {Reason}); the broker serves gRPC without /metrics and HTTP health")]
    private partial void LogBindFailed(string urls, string exceptionType, string reason);
}
