using OpenTelemetry.Metrics;

namespace SecretsBroker.Audit.Service.Observability;

public static class ObservabilityExtensions
{
    /// <summary>The service's meter and a Prometheus scraping endpoint (<c>/metrics</c>).</summary>
    public static IHostApplicationBuilder AddAuditObservability(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditMetrics>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(AuditMetrics.MeterName)
            .AddPrometheusExporter());
        return builder;
    }

    public static WebApplication MapAuditObservability(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
