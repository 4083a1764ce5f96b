using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Audit;

public static class AuditExtensions
{
    /// <summary>Registers the audit pipeline: options validated at start, the Redis stream, the spool-backed recorder and the auditor.</summary>
    public static IHostApplicationBuilder AddBrokerAudit(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AuditOptions>().Bind(builder.Configuration.GetSection(AuditOptions.SectionName))
            .Validate(o => IsAuditKey(o.Key), $"{AuditOptions.SectionName}:Key must be base64 of exactly 32 bytes (openssl rand -base64 32)")
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<AuditOptions>, AuditOptionsValidator>();
        services.AddMetrics();
        services.AddSingleton<AuditMetrics>();
        services.AddSingleton<IAuditStream, RedisAuditStream>();
        services.AddSingleton<AuditRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditRecorder>());
        services.AddSingleton<AccessAuditor>();
        return builder;
    }

    private static bool IsAuditKey(string? key)
    {
        Span<byte> bytes = stackalloc byte[48];
        return key is not null && Convert.TryFromBase64String(key, bytes, out var length) && length == 32;
    }
}
