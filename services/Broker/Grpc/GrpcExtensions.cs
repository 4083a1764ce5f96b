using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

public static class GrpcExtensions
{
    /// <summary>Registers the gRPC surface: the v1 service behind <see cref="BrokerCallInterceptor"/>, health and reflection.</summary>
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

    /// <summary>
    /// Answers UNIMPLEMENTED for any spelling of a gRPC method but its exact name (<see cref="ExactGrpcMethodMiddleware"/>);
    /// call before UseAuthentication, so such requests cost no token validation.
    /// </summary>
    public static WebApplication UseExactGrpcMethodNames(this WebApplication app)
    {
        app.UseMiddleware<ExactGrpcMethodMiddleware>();
        return app;
    }

    public static WebApplication MapBrokerGrpc(this WebApplication app)
    {
        app.MapGrpcService<SecretsBrokerService>();
        app.MapGrpcHealthChecksService();
        if (app.Configuration.GetValue("Broker:EnableReflection", defaultValue: true))
        {
            app.MapGrpcReflectionService();
        }
        return app;
    }
}
