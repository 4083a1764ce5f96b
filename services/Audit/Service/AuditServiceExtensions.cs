using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Grpc;
using SecretsBroker.Audit.Service.Ingestion;
using SecretsBroker.Audit.Service.Observability;
using SecretsBroker.Audit.Service.Store;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service;

/// <summary>Composition of the audit service: Program.cs calls these and nothing else.</summary>
public static class AuditServiceExtensions
{
    public static WebApplicationBuilder AddAuditService(this WebApplicationBuilder builder)
    {
        builder.AddAuditStore();
        builder.AddAuditIngestion();
        builder.AddAuditGrpc();
        builder.AddAuditObservability();
        return builder;
    }

    public static WebApplication MapAuditService(this WebApplication app)
    {
        // Open the store now, so a bad path, a locked file or an unreachable PostgreSQL stops the service before it listens.
        _ = app.Services.GetRequiredService<IAuditStore>();
        app.MapGrpcService<AuditLogService>();
        app.MapGrpcHealthChecksService();
        app.MapAuditObservability();
        return app;
    }

    /// <summary>The audit key and the store (SQLite or PostgreSQL, Audit:Store:Provider) with its retention (also used by the export command).</summary>
    public static IHostApplicationBuilder AddAuditStore(this IHostApplicationBuilder builder)
    {
        builder.Services.TryAddTimeProvider();
        builder.Services.AddOptionsWithValidateOnStart<AuditKeyOptions>().BindConfiguration(AuditKeyOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<AuditKeyOptions>, AuditKeyOptionsValidator>();
        builder.Services.AddSingleton(services => AuditKey.FromBase64(services.GetRequiredService<IOptions<AuditKeyOptions>>().Value.Key));
        builder.Services.AddOptionsWithValidateOnStart<StoreOptions>().BindConfiguration(StoreOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<StoreOptions>, StoreOptionsValidator>();
        builder.Services.AddSingleton<IAuditStore>(services =>
            services.GetRequiredService<IOptions<StoreOptions>>().Value.UsesPostgres
                ? ActivatorUtilities.CreateInstance<PostgresAuditStore>(services)
                : ActivatorUtilities.CreateInstance<AuditStore>(services));
        return builder;
    }

    public static IHostApplicationBuilder AddAuditIngestion(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<IngestionOptions>().BindConfiguration(IngestionOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<IngestionOptions>, IngestionOptionsValidator>();
        builder.Services.AddSingleton<IConnectionMultiplexer>(services =>
        {
            var configuration = ConfigurationOptions.Parse(services.GetRequiredService<IOptions<IngestionOptions>>().Value.Redis);
            // Start even when Redis is down, and keep reconnecting: the consumer retries until it is back.
            configuration.AbortOnConnectFail = false;
            configuration.ClientName ??= "secretsbroker-audit";
            return ConnectionMultiplexer.Connect(configuration);
        });
        builder.Services.AddSingleton(services => services.GetRequiredService<IOptions<AuditKeyOptions>>().Value.CreateAuthenticator());
        builder.Services.AddSingleton<StreamEntryDecoder>();
        builder.Services.AddSingleton<StreamTrimmer>();
        builder.Services.AddSingleton<StoredEventsSignal>();
        builder.Services.AddSingleton<AuditStreamConsumer>();
        builder.Services.AddHostedService(services => services.GetRequiredService<AuditStreamConsumer>());
        builder.Services.AddHostedService<RetentionService>();
        return builder;
    }

    public static IHostApplicationBuilder AddAuditGrpc(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<OperatorAuthOptions>().BindConfiguration(OperatorAuthOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<OperatorAuthOptions>, OperatorAuthOptionsValidator>();
        builder.Services.AddSingleton<OperatorAuthInterceptor>();
        builder.Services.AddOperatorCertificates();
        builder.Services.AddOptionsWithValidateOnStart<TailOptions>().BindConfiguration(TailOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<TailOptions>, TailOptionsValidator>();
        builder.Services.AddGrpc(options => options.EnableDetailedErrors = false)
            .AddServiceOptions<AuditLogService>(options => options.Interceptors.Add<OperatorAuthInterceptor>());
        builder.Services.AddGrpcHealthChecks()
            .AddCheck<StoreHealthCheck>("store")
            .AddCheck<RedisHealthCheck>("redis");
        return builder;
    }

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider)))
        {
            services.AddSingleton(TimeProvider.System);
        }
    }
}
