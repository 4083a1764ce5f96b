using Microsoft.Extensions.DependencyInjection.Extensions;

namespace SecretsBroker.Broker.Backends.Aws;

public static class AwsHostingExtensions
{
    /// <summary>Registers the <c>aws-sm</c> mount type (AWS Secrets Manager). Mounts are configured under <c>Broker:Mounts</c>; see docs/aws.md.</summary>
    public static IHostApplicationBuilder AddAwsBackends(this IHostApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(AwsEnvironment.Process);
        builder.Services.AddSingleton<ISecretBackendFactory, AwsBackendFactory>();
        builder.Services.AddSingleton<ISecretBackendFactory, AwsKmsBackendFactory>();
        builder.Services.AddHostedService<AwsMountSurvey>();
        return builder;
    }
}

/// <summary>At start, in the background, logs how many secrets each aws-sm mount can see (a wrong Region shows as none).</summary>
public sealed class AwsMountSurvey(MountTable mounts) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var backend in mounts.Mounts.Select(m => m.Backend).OfType<AwsSecretsManagerBackend>())
        {
            try
            {
                await backend.LogVisibleSecretsAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }
}
