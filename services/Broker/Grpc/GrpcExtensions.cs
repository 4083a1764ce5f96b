using System.Threading.RateLimiting;
using Grpc.Core;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

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
        }).AddServiceOptions<SecretsBrokerService>(options => options.Interceptors.Add<BrokerCallInterceptor>())
            .AddServiceOptions<CryptoService>(options => options.Interceptors.Add<BrokerCallInterceptor>());
        // Stateless over singletons: one instance, instead of one activated for every call. Grpc.AspNetCore takes an
        // interceptor from DI when it is registered (DefaultGrpcInterceptorActivator), else it creates one per call.
        builder.Services.AddSingleton<BrokerCallInterceptor>();
        builder.Services.AddSingleton<SecretsBrokerService>();
        builder.Services.AddSingleton<CryptoService>();
        builder.Services.AddSingleton<EdgeRefusals>();
        builder.Services.AddOptionsWithValidateOnStart<RefusalAuditOptions>().BindConfiguration(RefusalAuditOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<RefusalAuditOptions>, RefusalAuditOptionsValidator>();
        builder.Services.AddSingleton(sp => new RefusalSummaries(sp.GetRequiredService<AccessAuditor>().RefusedAsync,
            sp.GetRequiredService<IOptions<RefusalAuditOptions>>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<RefusalSummaries>>()));
        // Registered after the audit recorder, so it stops first and its last summaries still reach the stream.
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RefusalSummaries>());
        builder.Services.AddSingleton<EdgeMetrics>();
        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<SourceRateLimiter, EdgeRefusals>(ConfigureSourceLimit);
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
    /// Limits calls per source address (<see cref="SourceRateLimiter"/>) with ASP.NET Core's rate limiting middleware; call
    /// before UseAuthentication, so a refused call costs no token validation.
    /// </summary>
    public static WebApplication UseSourceRateLimit(this WebApplication app)
    {
        _ = app.Services.GetRequiredService<EdgeMetrics>();
        app.UseRateLimiter();
        return app;
    }

    /// <summary>A source over its budget gets RESOURCE_EXHAUSTED with RetryInfo; the refusal is audited (counted when repeated).</summary>
    private static void ConfigureSourceLimit(RateLimiterOptions options, SourceRateLimiter limiter, EdgeRefusals refusals)
    {
        options.GlobalLimiter = limiter.Limiter;
        options.OnRejected = async (rejected, cancellationToken) =>
        {
            limiter.CountRejection();
            var http = rejected.HttpContext;
            var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : limiter.ReplenishmentPeriod;
            await refusals.RefusedAsync(refusals.Access(http, null), new AuditEntry(AuditActions.RateLimit),
                new BrokerException(BrokerErrorKind.ResourceExhausted, "rate limit exceeded for this source"), cancellationToken).ConfigureAwait(false);
            var details = GrpcAnswers.RateLimited("source", retryAfter);
            await GrpcAnswers.WriteAsync(http, new Status(StatusCode.ResourceExhausted, details.Message), details).ConfigureAwait(false);
        };
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
        app.MapGrpcService<CryptoService>();
        app.MapGrpcHealthChecksService();
        if (app.Configuration.GetValue("Broker:EnableReflection", defaultValue: true))
        {
            app.MapGrpcReflectionService();
        }
        return app;
    }
}
