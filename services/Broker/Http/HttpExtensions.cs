using Microsoft.Extensions.Options;

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
}
