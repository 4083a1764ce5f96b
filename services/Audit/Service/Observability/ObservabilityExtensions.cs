using System.Reflection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace SecretsBroker.Audit.Service.Observability;

public static class ObservabilityExtensions
{
    /// <summary>The name every metric of this service carries (<c>target_info</c>, <c>service_name</c>), as the broker names itself "secretsbroker-broker".</summary>
    public const string ServiceName = "secretsbroker-audit";

    /// <summary>The service's meter, the .NET runtime metrics (GC, heap, thread pool) and a Prometheus scraping endpoint (<c>/metrics</c>).</summary>
    public static IHostApplicationBuilder AddAuditObservability(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditMetrics>();
        var version = typeof(ObservabilityExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName, serviceVersion: version))
            .WithMetrics(metrics => metrics
                .AddMeter(AuditMetrics.MeterName)
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter());
        return builder;
    }

    public static WebApplication MapAuditObservability(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
