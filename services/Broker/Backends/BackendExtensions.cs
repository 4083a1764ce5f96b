using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Backends.Keyring;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Backends.Vault;

namespace SecretsBroker.Broker.Backends;

public static class BackendExtensions
{
    /// <summary>Registers the backend types (local, aws-sm, vault-kv, vault-dynamic), the observing decorator's observer and the mount table.</summary>
    public static IHostApplicationBuilder AddBrokerBackends(this IHostApplicationBuilder builder)
    {
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<BackendCallObserver>();
        builder.Services.AddSingleton<ISecretBackendFactory, LocalBackendFactory>();
        builder.Services.AddSingleton<ISecretBackendFactory, LocalKeyringFactory>();
        builder.AddAwsBackends();
        builder.AddVaultBackends();
        builder.Services.AddSingleton<MountTable>();
        return builder;
    }
}
