using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Audit;

public static class AuditExtensions
{
    /// <summary>Registers the audit pipeline: options validated at start, the Redis stream, the spool-backed recorder and the auditor.</summary>
    public static IHostApplicationBuilder AddBrokerAudit(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<AuditOptions>().BindConfiguration(AuditOptions.SectionName);
        services.AddSingleton<IValidateOptions<AuditOptions>, AuditOptionsValidator>();
        services.AddSingleton<IValidateOptions<AuditOptions>, AuditKeyValidator>();
        services.AddMetrics();
        services.AddSingleton<AuditMetrics>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<AuditOptions>>().Value.CreateEventMacKey());
        services.AddSingleton<RedisAuditStream>();
        // Without Redis, Broker:Audit:LocalFile (Development) takes the events instead of the spool.
        services.AddSingleton<IAuditStream>(sp => LocalFileAuditStream.IsSelected(sp)
            ? ActivatorUtilities.CreateInstance<LocalFileAuditStream>(sp)
            : sp.GetRequiredService<RedisAuditStream>());
        services.AddSingleton<AuditRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditRecorder>());
        services.AddSingleton<AccessAuditor>();
        services.AddSingleton<RedisPersistenceCheck>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisPersistenceCheck>());
        return builder;
    }
}
