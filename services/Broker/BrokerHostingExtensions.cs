using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker;

/// <summary>Composition of the broker: Program.cs and the test hosts call these and nothing else.</summary>
public static class BrokerHostingExtensions
{
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        builder.AddBrokerAuthentication();
        builder.AddBrokerBackends();
        builder.AddBrokerRedis();
        builder.AddBrokerCaching();
        builder.AddBrokerAudit();
        builder.AddBrokerLeases();
        builder.AddBrokerGrpc();
        builder.AddBrokerObservability();
        return builder;
    }

    public static WebApplication MapBroker(this WebApplication app)
    {
        // Build the mount table and load the policy now, so a bad configuration stops the broker before it listens.
        _ = app.Services.GetRequiredService<MountTable>();
        _ = app.Services.GetRequiredService<PolicyEvaluator>();
        app.MapBrokerObservability();
        app.UseAuthentication();
        app.MapGrpcService<SecretsBrokerService>();
        app.MapGrpcHealthChecksService();
        if (app.Configuration.GetValue("Broker:EnableReflection", defaultValue: true))
        {
            app.MapGrpcReflectionService();
        }
        return app;
    }

    public static IHostApplicationBuilder AddBrokerBackends(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<BrokerOptions>().Bind(builder.Configuration.GetSection(BrokerOptions.SectionName)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();
        builder.Services.AddSingleton<ISecretBackendFactory, LocalBackendFactory>();
        builder.AddAwsBackends();
        builder.AddVaultBackends();
        builder.Services.AddSingleton<MountTable>();
        builder.Services.AddSingleton<PolicyEvaluator>();
        builder.Services.AddOptions<RateLimitOptions>().Bind(builder.Configuration.GetSection(RateLimitOptions.SectionName)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        builder.Services.AddSingleton<CallerRateLimiter>();
        builder.Services.AddSingleton<SecretReader>();
        return builder;
    }

    public static IHostApplicationBuilder AddBrokerGrpc(this IHostApplicationBuilder builder)
    {
        var maxRequestBytes = builder.Configuration.GetValue($"{BrokerOptions.SectionName}:{nameof(BrokerOptions.MaxRequestBytes)}", new BrokerOptions().MaxRequestBytes);
        builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = maxRequestBytes;
            options.EnableDetailedErrors = false;
        }).AddServiceOptions<SecretsBrokerService>(options => options.Interceptors.Add<BrokerCallInterceptor>());
        // Stateless over singletons: one instance, instead of one activated for every call.
        builder.Services.AddSingleton<SecretsBrokerService>();
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddGrpcReflection();
        return builder;
    }
}
