using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Backends.Vault;

public static class VaultBackendExtensions
{
    /// <summary>
    /// Registers the <c>vault-kv</c> and <c>vault-dynamic</c> mount types and the Vault connections of
    /// <c>Broker:Vault</c> (validated at start). See docs/vault.md.
    /// </summary>
    public static IHostApplicationBuilder AddVaultBackends(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<VaultOptions>().BindConfiguration(VaultOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<VaultOptions>, VaultOptionsValidator>();
        builder.Services.AddSingleton<VaultMetrics>();
        builder.Services.AddSingleton<VaultConnections>();
        builder.Services.AddSingleton<ISecretBackendFactory, VaultKvBackendFactory>();
        builder.Services.AddSingleton<ISecretBackendFactory, VaultDynamicBackendFactory>();
        builder.Services.AddSingleton<ISecretBackendFactory, VaultTransitBackendFactory>();
        return builder;
    }
}
