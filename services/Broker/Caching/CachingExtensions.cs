using System.Text.Json;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace SecretsBroker.Broker.Caching;

/// <summary>Registers the secret cache: FusionCache L1, and with a Redis (<c>Broker:Redis</c>) an encrypted L2 and backplane.</summary>
public static class CachingExtensions
{
    public static IHostApplicationBuilder AddBrokerCaching(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<CacheOptions>().BindConfiguration(CacheOptions.SectionName);
        services.AddSingleton<IValidateOptions<CacheOptions>, CacheOptionsValidator>();
        services.AddMetrics();
        services.AddSingleton<CacheMetrics>();
        services.AddSingleton<CacheKeyRing>();
        services.AddSingleton<MountCachePolicies>();
        services.AddSingleton<SecretCache>();
        services.AddHostedService<CacheInvalidationService>();

        var settings = builder.Configuration.GetSection(CacheOptions.SectionName).Get<CacheOptions>() ?? new CacheOptions();
        var fusion = services.AddFusionCache()
            .WithMemoryCache(CreateMemoryCache(settings))
            .WithOptions(options => Configure(options, settings));
        if (!builder.HasBrokerRedis())
        {
            return builder;
        }

        fusion
            .WithSerializer(new FusionCacheSystemTextJsonSerializer(new JsonSerializerOptions { IncludeFields = true }))
            .WithDistributedCache(sp =>
            {
                var connection = sp.GetRequiredService<RedisConnection>();
                var redis = new RedisCache(Options.Create(new RedisCacheOptions
                {
                    ConnectionMultiplexerFactory = connection.GetAsync,
                    InstanceName = settings.KeyPrefix + ":",
                }));
                return new EncryptingDistributedCache(redis, sp.GetRequiredService<CacheKeyRing>(), sp.GetRequiredService<CacheMetrics>(),
                    sp.GetRequiredService<ILogger<EncryptingDistributedCache>>());
            })
            .WithBackplane(sp => new RedisBackplane(
                Options.Create(new RedisBackplaneOptions { ConnectionMultiplexerFactory = sp.GetRequiredService<RedisConnection>().GetAsync }),
                sp.GetRequiredService<ILogger<RedisBackplane>>()));
        return builder;
    }

    /// <summary>The broker's FusionCache settings (also used by tests that build a FusionCache of their own).</summary>
    public static void Configure(FusionCacheOptions options, CacheOptions settings)
    {
        // L1 is bounded (L1MaxEntries), so every entry FusionCache puts there counts one.
        options.DefaultEntryOptions.Size = 1;
        options.TagsDefaultEntryOptions.Size = 1;
        options.DistributedCacheCircuitBreakerDuration = settings.RedisCircuitBreakerDuration;
        options.BackplaneCircuitBreakerDuration = settings.RedisCircuitBreakerDuration;
        options.BackplaneChannelPrefix = settings.KeyPrefix;
        options.DistributedCacheErrorsLogLevel = LogLevel.Warning;
        options.BackplaneErrorsLogLevel = LogLevel.Warning;
        options.SerializationErrorsLogLevel = LogLevel.Warning;
        // A factory exception is mostly an answer (NOT_FOUND, PERMISSION_DENIED ...), which FusionCache would log as a
        // warning with its stack (issue 18). Backends log their own failures, the interceptor logs unexpected ones.
        options.FactoryErrorsLogLevel = LogLevel.None;
        // Keys are HMACs already; FusionCache's own prefix advice does not apply.
        options.MissingCacheKeyPrefixWarningLogLevel = LogLevel.Debug;
    }

    /// <summary>The in-process L1: at most <see cref="CacheOptions.L1MaxEntries"/> entries, each of size 1.</summary>
    public static MemoryCache CreateMemoryCache(CacheOptions settings) =>
        new(new MemoryCacheOptions { SizeLimit = settings.L1MaxEntries });
}
