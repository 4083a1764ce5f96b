using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Leases;

public static class LeaseExtensions
{
    /// <summary>Registers the lease API and keeper: the registry in Redis when one is configured, in process otherwise.</summary>
    public static IHostApplicationBuilder AddBrokerLeases(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<LeaseOptions>().BindConfiguration(LeaseOptions.SectionName);
        services.AddSingleton<IValidateOptions<LeaseOptions>, LeaseOptionsValidator>();
        if (builder.HasBrokerRedis())
        {
            services.AddSingleton<ILeaseRegistry, RedisLeaseRegistry>();
        }
        else
        {
            services.AddSingleton<ILeaseRegistry, InMemoryLeaseRegistry>();
        }
        services.AddSingleton<LeaseRecords>();
        services.AddSingleton<LeaseMetrics>();
        services.AddSingleton<LeaseOperations>();
        services.AddSingleton<LeaseKeeper>();
        services.AddHostedService(sp => sp.GetRequiredService<LeaseKeeper>());
        services.AddHostedService<OrphanLeaseSweeper>();
        services.AddHostedService<ReplicaLiveness>();
        return builder;
    }
}
