using Microsoft.Extensions.DependencyInjection.Extensions;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Watching;

namespace SecretsBroker.Broker;

/// <summary>Composition of the broker: Program.cs and the test hosts call these and nothing else.</summary>
public static class BrokerHostingExtensions
{
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        // One clock for everything; test hosts register a FakeTimeProvider first.
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.AddBrokerAuthentication();
        builder.AddBrokerBackends();
        builder.AddBrokerPolicy();
        builder.AddBrokerRedis();
        builder.AddBrokerCaching();
        builder.AddBrokerAudit();
        builder.AddBrokerAccess();
        builder.AddBrokerReading();
        builder.AddBrokerLeases();
        builder.AddBrokerWatching();
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
        app.UseExactGrpcMethodNames();
        app.UseAuthentication();
        app.MapBrokerGrpc();
        return app;
    }
}
