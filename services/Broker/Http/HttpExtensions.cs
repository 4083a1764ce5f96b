using Microsoft.Extensions.Options;
using Microsoft.OpenApi.Models;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// HTTP/JSON for the v1 API (gRPC JSON transcoding of the protos' google.api.http rules: the same interceptor, gate, policy,
/// audit, cache and metrics as gRPC calls), where HTTP/1.1 is served, and the opt-in AWS Secrets Manager Agent and Dapr
/// drop-ins (docs/http.md).
/// </summary>
public static class HttpExtensions
{
    public static WebApplicationBuilder AddBrokerHttp(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddGrpc().AddJsonTranscoding();
        // The OpenAPI document of the HTTP/JSON API: Microsoft.AspNetCore.Grpc.Swagger describes the transcoded endpoints (with
        // their protobuf messages as JSON schemas) for Swashbuckle.
        services.AddGrpcSwagger();
        services.AddSwaggerGen(options => options.SwaggerDoc(OpenApiDocument, new OpenApiInfo
        {
            Title = "SecretsBroker HTTP/JSON API",
            Version = OpenApiDocument,
            Description = "gRPC JSON transcoding of secretsbroker.v1 (docs/http.md). Authorization: Bearer <token>; errors are google.rpc.Status JSON.",
        }));
        services.AddOptionsWithValidateOnStart<HttpOptions>().BindConfiguration(HttpOptions.SectionName);
        services.AddSingleton<IValidateOptions<HttpOptions>, HttpOptionsValidator>();
        HttpListeners.Configure(builder, builder.WebHost, builder.Configuration.GetSection(HttpOptions.SectionName).Get<HttpOptions>() ?? new HttpOptions());

        services.AddOptionsWithValidateOnStart<AwsAgentOptions>().BindConfiguration(AwsAgentOptions.SectionName);
        services.AddSingleton<IValidateOptions<AwsAgentOptions>, AwsAgentOptionsValidator>();
        services.AddSingleton<AwsAgentServer>();
        services.AddHostedService(sp => sp.GetRequiredService<AwsAgentServer>());

        services.AddOptionsWithValidateOnStart<DaprOptions>().BindConfiguration(DaprOptions.SectionName);
        services.AddSingleton<IValidateOptions<DaprOptions>, DaprOptionsValidator>();
        services.AddSingleton<DaprServer>();
        services.AddHostedService(sp => sp.GetRequiredService<DaprServer>());
        return builder;
    }

    private const string OpenApiDocument = "v1";

    private const string OpenApiPrefix = "/openapi";

    /// <summary>
    /// Serves the OpenAPI document at <c>GET /openapi/v1.json</c> (unauthenticated: it describes the API, no secret) when on.
    /// Only requests under /openapi pass through Swashbuckle's middleware: its Invoke takes the ISwaggerProvider as a
    /// parameter, so in the main pipeline every call (each cached GetSecret) would build a SwaggerGenerator.
    /// </summary>
    public static WebApplication UseBrokerOpenApi(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<HttpOptions>>().Value.OpenApi)
        {
            app.UseWhen(context => context.Request.Path.StartsWithSegments(OpenApiPrefix, StringComparison.Ordinal),
                openApi => openApi.UseSwagger(options => options.RouteTemplate = "openapi/{documentName}.json"));
        }
        return app;
    }
}
