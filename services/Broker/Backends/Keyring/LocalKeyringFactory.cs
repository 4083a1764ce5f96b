using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Files;

namespace SecretsBroker.Broker.Backends.Keyring;

/// <summary>
/// Mount type <c>local-keyring</c>. Settings: either <c>KeyFile</c> (YAML or JSON, relative to the content root, reloaded
/// when it changes unless <c>Watch</c> is false: rotation without a restart) or <c>Keys</c> (the same shape in configuration).
/// </summary>
public sealed class LocalKeyringFactory(IHostEnvironment environment, ILoggerFactory loggerFactory, ConfigReloads? reloads = null) : ISecretBackendFactory
{
    public string MountType => "local-keyring";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var file = settings["KeyFile"];
        var keys = settings.GetSection("Keys");
        if (string.IsNullOrWhiteSpace(file) == !keys.Exists())
        {
            throw new InvalidOperationException("set exactly one of 'KeyFile' (a YAML or JSON key file) and 'Keys' (keys in configuration)");
        }
        if (keys.Exists())
        {
            var snapshot = Keyring.FromConfiguration(keys);
            return new LocalKeyringBackend(() => snapshot);
        }
        var path = Path.Combine(environment.ContentRootPath, file!);
        return new LocalKeyringBackend(new ReloadingFile<KeyringSnapshot>(path, $"key file of mount '{mount.Prefix}'",
            (content, _) => Keyring.ParseFile(content), settings.GetValue("Watch", defaultValue: true),
            loggerFactory.CreateLogger<LocalKeyringBackend>(), reloads?.Track("keyring", $"key file of mount '{mount.Prefix}'")));
    }
}
