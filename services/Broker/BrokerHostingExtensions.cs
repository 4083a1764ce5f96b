using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Crypto;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Http;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Rotation;
using SecretsBroker.Broker.Watching;
using SecretsBroker.Broker.Writing;

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
        builder.AddBrokerWriting();
        builder.AddBrokerLeases();
        builder.AddBrokerWatching();
        builder.AddBrokerCrypto();
        builder.AddBrokerRotation();
        builder.AddBrokerGrpc();
        builder.AddBrokerHttp();
        builder.AddBrokerObservability();
        return builder;
    }

    public static WebApplication MapBroker(this WebApplication app)
    {
        // Validate every options class and build the mount table now, so a bad configuration stops the broker before it
        // listens, with every failure in one message (Program.cs prints it and exits 1).
        ValidateConfiguration(app.Services);
        _ = app.Services.GetRequiredService<PolicyEvaluator>();
        app.MapBrokerObservability();
        app.UseBrokerOpenApi();
        app.UseExactGrpcMethodNames();
        app.UseSourceRateLimit();
        app.UseAuthentication();
        app.UseGrpcCallGate();
        app.MapBrokerGrpc();
        return app;
    }

    /// <summary>Runs every ValidateOnStart validation and builds the mount table; all failures are reported as one exception.</summary>
    private static void ValidateConfiguration(IServiceProvider services)
    {
        var failures = new List<OptionsValidationException>();
        try
        {
            services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (OptionsValidationException ex)
        {
            failures.Add(ex);
        }
        catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is OptionsValidationException))
        {
            failures.AddRange(ex.InnerExceptions.Cast<OptionsValidationException>());
        }
        try
        {
            _ = services.GetRequiredService<MountTable>();
        }
        catch (OptionsValidationException ex)
        {
            failures.Add(ex);
        }
        try
        {
            _ = services.GetRequiredService<RotationRules>();
        }
        catch (OptionsValidationException ex)
        {
            failures.Add(ex);
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(failures[0].OptionsName, failures[0].OptionsType, [.. failures.SelectMany(f => f.Failures)]);
        }
        // Rotation series exist from start, every one at zero.
        _ = services.GetRequiredService<RotationMetrics>();
    }
}
