using Microsoft.Extensions.DependencyInjection.Extensions;

namespace SecretsBroker.Broker.Backends.Aws;

public static class AwsHostingExtensions
{
    /// <summary>Registers the <c>aws-sm</c> mount type (AWS Secrets Manager). Mounts are configured under <c>Broker:Mounts</c>; see docs/aws.md.</summary>
    public static IHostApplicationBuilder AddAwsBackends(this IHostApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(AwsEnvironment.Process);
        builder.Services.AddSingleton<ISecretBackendFactory, AwsBackendFactory>();
        return builder;
    }
}
