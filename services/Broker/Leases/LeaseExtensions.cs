using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Leases;

/// <summary>Registers lease keeping and rotation watching: the registry in Redis when one is configured, in process otherwise.</summary>
public static class LeaseExtensions
{
    public static IHostApplicationBuilder AddBrokerLeases(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<LeaseOptions>().Bind(builder.Configuration.GetSection(LeaseOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<LeaseOptions>, LeaseOptionsValidator>();
        services.AddOptions<WatchOptions>().Bind(builder.Configuration.GetSection(WatchOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WatchOptions>, WatchOptionsValidator>();
        if (builder.Configuration.GetSection(RedisOptions.SectionName).Get<RedisOptions>()?.IsConfigured == true)
        {
            services.AddSingleton<ILeaseRegistry, RedisLeaseRegistry>();
        }
        else
        {
            services.AddSingleton<ILeaseRegistry, InMemoryLeaseRegistry>();
        }
        services.AddSingleton<LeaseManager>();
        services.AddHostedService(sp => sp.GetRequiredService<LeaseManager>());
        services.AddSingleton<SecretWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<SecretWatcher>());
        return builder;
    }
}
