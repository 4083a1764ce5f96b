using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Watching;

public static class WatchingExtensions
{
    /// <summary>Registers rotation watching: its shared state in Redis when one is configured, in process otherwise.</summary>
    public static IHostApplicationBuilder AddBrokerWatching(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<WatchOptions>().BindConfiguration(WatchOptions.SectionName);
        services.AddSingleton<IValidateOptions<WatchOptions>, WatchOptionsValidator>();
        if (builder.HasBrokerRedis())
        {
            services.AddSingleton<IWatchState, RedisWatchState>();
        }
        else
        {
            services.AddSingleton<IWatchState, InMemoryWatchState>();
        }
        services.AddSingleton<SecretWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<SecretWatcher>());
        return builder;
    }
}
