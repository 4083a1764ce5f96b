using Microsoft.Extensions.Configuration.Memory;
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
        builder.Services.AddSingleton<EdgeRefusals>();
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddGrpcReflection();
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = QuietAnswerLogs });
        return builder;
    }

    /// <summary>
    /// Categories that log the broker's answers at Information: grpc-dotnet every non-OK status it sends (RpcConnectionError)
    /// and every unreadable message with its stack, the dev-token handler every refused token. Answers are audited, not
    /// logged above Debug (issue 18); these defaults come first, so any configured level for the category wins.
    /// </summary>
    private static readonly KeyValuePair<string, string?>[] QuietAnswerLogs =
    [
        new("Logging:LogLevel:Grpc.AspNetCore.Server.ServerCallHandler", nameof(LogLevel.Warning)),
        new("Logging:LogLevel:" + typeof(Auth.DevTokenAuthenticationHandler).FullName, nameof(LogLevel.Warning)),
    ];

    /// <summary>
    /// Answers UNIMPLEMENTED for any spelling of a gRPC method but its exact name (<see cref="ExactGrpcMethodMiddleware"/>);
    /// call before UseAuthentication, so such requests cost no token validation.
    /// </summary>
    public static WebApplication UseExactGrpcMethodNames(this WebApplication app)
    {
        app.UseMiddleware<ExactGrpcMethodMiddleware>();
        return app;
    }

    /// <summary>
    /// Refuses SecretsBroker calls without a valid credential, and unreadable request messages, before Grpc.AspNetCore reads
    /// them (<see cref="GrpcCallGate"/>); call after UseAuthentication.
    /// </summary>
    public static WebApplication UseGrpcCallGate(this WebApplication app)
    {
        app.UseMiddleware<GrpcCallGate>();
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
