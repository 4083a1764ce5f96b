using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Files;

namespace SecretsBroker.Broker.Backends.Local;

/// <summary>
/// Mount type <c>local</c>. Settings: <c>File</c> (required; JSON or YAML, relative to the content root)
/// <c>Watch</c> (default true: reload when the file changes) and <c>Writable</c> (default false: PutSecret appends
/// versions to the file; for development and the quick start).
/// </summary>
public sealed class LocalBackendFactory(IHostEnvironment environment, ILoggerFactory loggerFactory, ConfigReloads? reloads = null,
    TimeProvider? timeProvider = null) : ISecretBackendFactory
{
    public string MountType => "local";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var file = settings["File"];
        if (string.IsNullOrWhiteSpace(file))
        {
            throw new InvalidOperationException("'File' is required: the path of a JSON or YAML secrets file");
        }
        var watch = settings.GetValue("Watch", defaultValue: true);
        var writable = settings.GetValue("Writable", defaultValue: false);
        var path = Path.Combine(environment.ContentRootPath, file);
        var isYaml = Path.GetExtension(path) is ".yaml" or ".yml";
        // Each parse sees the last loaded snapshot, so unchanged versions keep their times (reloads are serialized).
        LocalSecretSnapshot? loaded = null;
        return new LocalFileBackend(new ReloadingFile<LocalSecretSnapshot>(path, $"secrets file of mount '{mount.Prefix}'",
            (content, modified) => loaded = LocalSecretFile.Parse(content, isYaml, modified, loaded), watch, loggerFactory.CreateLogger<LocalFileBackend>(),
            reloads?.Track("secrets", $"secrets file of mount '{mount.Prefix}'")),
            writable ? new LocalWriteSettings(isYaml, timeProvider ?? TimeProvider.System) : null);
    }
}
