using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Redis;

public static class RedisExtensions
{
    private const string HasRedisKey = "SecretsBroker.HasRedis";

    /// <summary>
    /// Registers <see cref="RedisOptions"/> and, when a Redis is configured, the shared <see cref="RedisConnection"/> and its
    /// opening at start (so the first read does not pay for it).
    /// </summary>
    public static IHostApplicationBuilder AddBrokerRedis(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<RedisOptions>().BindConfiguration(RedisOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<RedisOptions>, RedisOptionsValidator>();
        builder.Services.AddSingleton<IValidateOptions<RedisOptions>, RedisTlsOptionsValidator>();
        if (builder.HasBrokerRedis())
        {
            builder.Services.AddSingleton<RedisConnection>();
            builder.Services.AddHostedService<RedisConnectionOpener>();
        }
        return builder;
    }

    /// <summary>
    /// Whether this broker has a Redis: the one place that decides it, so every feature picks its shared (Redis) or
    /// in-process implementation the same way.
    /// </summary>
    public static bool HasBrokerRedis(this IHostApplicationBuilder builder)
    {
        if (builder.Properties.TryGetValue(HasRedisKey, out var known) && known is bool hasRedis)
        {
            return hasRedis;
        }
        hasRedis = builder.Configuration.GetSection(RedisOptions.SectionName).Get<RedisOptions>()?.IsConfigured == true;
        builder.Properties[HasRedisKey] = hasRedis;
        return hasRedis;
    }

    private sealed class RedisConnectionOpener(RedisConnection redis) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => redis.GetAsync().WaitAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
