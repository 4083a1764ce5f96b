using System.Diagnostics.Metrics;
using System.Reflection;
using Grpc.AspNetCore.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using OpenTelemetry;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Files;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// Metrics (OpenTelemetry, Prometheus exporter on the management port), health checks (gRPC health
/// on the gRPC port, HTTP health on the management port) and optional OTLP tracing.
/// </summary>
public static class ObservabilityExtensions
{
    /// <summary>
    /// Meters exported besides the broker's own. Meters of other broker components register by name
    /// here; the wildcard also picks up any later <c>SecretsBroker.*</c> meter.
    /// </summary>
    public static readonly string[] ExportedMeters =
    [
        BrokerMetrics.MeterName,
        CacheMetrics.MeterName,
        AuditMetrics.MeterName,
        "SecretsBroker.*",
        // Kestrel's connection metrics. ASP.NET Core's per-request meters (Hosting's http.server.*,
        // routing, authentication) are left out on purpose: the gRPC metrics above count and time every
        // call already, and each extra per-request instrument was a measurable share of a cached read
        // (docs/benchmarks.md, "Read path").
        "Microsoft.AspNetCore.Server.Kestrel",
    ];

    /// <summary>Per-request Kestrel instruments dropped for the same reason (the gRPC metrics cover requests).</summary>
    private static readonly string[] DroppedInstruments = ["kestrel.queued_requests"];

    public static IHostApplicationBuilder AddBrokerObservability(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<ManagementOptions>().BindConfiguration(ManagementOptions.SectionName);
        services.AddSingleton<IValidateOptions<ManagementOptions>, ManagementOptionsValidator>();
        services.AddSingleton<IValidateOptions<ManagementOptions>, ManagementUrlsValidator>();
        services.AddOptionsWithValidateOnStart<TracingOptions>().BindConfiguration(TracingOptions.SectionName);
        services.AddSingleton<IValidateOptions<TracingOptions>, TracingOptionsValidator>();
        services.AddOptionsWithValidateOnStart<BrokerHealthOptions>().BindConfiguration(BrokerHealthOptions.SectionName);
        services.AddSingleton<IValidateOptions<BrokerHealthOptions>, BrokerHealthOptionsValidator>();

        services.AddMetrics();
        services.AddSingleton<BrokerMetrics>();
        services.AddSingleton<ConfigReloads>();

        services.AddHealthChecks()
            .AddCheck<LivenessHealthCheck>("process", tags: [HealthNames.LiveTag])
            .AddCheck<BackendsHealthCheck>("backends", tags: [HealthNames.ReadyTag])
            .AddCheck<RedisHealthCheck>("redis", tags: [HealthNames.ReadyTag])
            .AddCheck<AuditHealthCheck>("audit", tags: [HealthNames.ReadyTag])
            .AddCheck<ConfigReloadsHealthCheck>("config", tags: [HealthNames.ReadyTag])
            .AddCheck<Rotation.RotationHealthCheck>("rotation", tags: [HealthNames.ReadyTag]);
        // gRPC health: "" answers liveness, "readiness" and the API's service name answer readiness.
        // PostConfigure, so this mapping replaces the default "every check for every name" one.
        services.PostConfigure<GrpcHealthChecksOptions>(options =>
        {
            options.Services.Clear();
            options.Services.Map(HealthNames.LivenessService, check => check.Tags.Contains(HealthNames.LiveTag));
            foreach (var name in HealthNames.ReadinessServices)
            {
                options.Services.Map(name, check => check.Tags.Contains(HealthNames.ReadyTag));
            }
        });

        var tracing = builder.Configuration.GetSection(TracingOptions.SectionName).Get<TracingOptions>() ?? new TracingOptions();
        var version = typeof(ObservabilityExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("secretsbroker-broker", serviceVersion: version))
            .WithMetrics(metrics =>
            {
                metrics
                    .AddMeter(ExportedMeters)
                    .AddRuntimeInstrumentation()
                    .AddPrometheusExporter();
                foreach (var instrument in DroppedInstruments)
                {
                    metrics.AddView(instrument, MetricStreamConfiguration.Drop);
                }
                ((IDeferredMeterProviderBuilder)metrics).Configure((sp, builder) => builder.AddView(OnlyThisHostsMeters(sp.GetRequiredService<IMeterFactory>())));
            })
            .WithTracing(traces =>
            {
                // Always on, so every call has a W3C trace id (taken from traceparent when the caller sends
                // one) for logs and audit events; spans are recorded and exported only when an OTLP endpoint
                // is configured.
                traces.AddSource(BrokerTelemetry.ActivitySourceName)
                    .AddAspNetCoreInstrumentation(options => options.RecordException = false)
                    .SetSampler(tracing.Enabled ? new ParentBasedSampler(new TraceIdRatioBasedSampler(tracing.SampleRatio)) : new AlwaysOffSampler());
                if (tracing.Enabled)
                {
                    traces.AddOtlpExporter(otlp =>
                    {
                        otlp.Endpoint = tracing.OtlpEndpoint!;
                        otlp.Protocol = tracing.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                        otlp.BatchExportProcessorOptions.ScheduledDelayMilliseconds = (int)tracing.ExportDelay.TotalMilliseconds;
                    });
                }
            });

        services.AddSingleton<ManagementServer>();
        services.AddHostedService(sp => sp.GetRequiredService<ManagementServer>());
        return builder;
    }

    /// <summary>
    /// Meters are matched by name process-wide, so a second host in the process (the management
    /// server, or several brokers in one test process) would mix its instruments into this host's
    /// export. This view keeps the instruments of meters this host's <see cref="IMeterFactory"/>
    /// created and the process-wide ones (no factory: the .NET runtime's), and drops the rest.
    /// </summary>
    private static Func<Instrument, MetricStreamConfiguration?> OnlyThisHostsMeters(IMeterFactory factory) =>
        instrument => instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, factory) ? null : MetricStreamConfiguration.Drop;

    /// <summary>Adds the gRPC call metrics middleware; call first in MapBroker, so it sees every call's final status.</summary>
    public static WebApplication MapBrokerObservability(this WebApplication app)
    {
        app.UseMiddleware<GrpcMetricsMiddleware>();
        return app;
    }
}
