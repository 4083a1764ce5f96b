using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Backends;

/// <summary>A configured mount: a logical path prefix served by one backend instance.</summary>
public sealed record MountDefinition(string Prefix, string Type);

/// <summary>A mount with its backend, and the name inside the mount that a logical path resolved to.</summary>
public sealed partial record MountedBackend(MountDefinition Mount, ISecretBackend Backend);

/// <summary>
/// Routes logical paths to backends: the longest configured prefix that matches whole segments wins.
/// Built once at start from <c>Broker:Mounts</c>; an invalid table stops the broker with a clear message.
/// </summary>
public sealed class MountTable
{
    public const string ConfigurationSection = "Broker:Mounts";

    private readonly MountedBackend[] _byLongestPrefix;

    public MountTable(IConfiguration configuration, IEnumerable<ISecretBackendFactory> factories, BackendCallObserver? observer = null)
    {
        var factoryByType = factories.ToDictionary(f => f.MountType, StringComparer.Ordinal);
        var failures = new List<string>();
        var mounts = new List<MountedBackend>();
        var index = 0;
        foreach (var section in configuration.GetSection(ConfigurationSection).GetChildren())
        {
            var where = $"{ConfigurationSection}:{section.Key}";
            index++;
            var prefix = section["Prefix"];
            var type = section["Type"];
            if (LogicalPath.Validate(prefix, "Prefix") is { } prefixError)
            {
                failures.Add($"{where}: {prefixError}");
                continue;
            }
            if (string.IsNullOrWhiteSpace(type) || !factoryByType.TryGetValue(type, out var factory))
            {
                failures.Add($"{where}: Type '{type}' is not a known mount type; known types are {string.Join(", ", factoryByType.Keys.Order())}");
                continue;
            }
            if (mounts.Any(m => m.Mount.Prefix == prefix))
            {
                failures.Add($"{where}: Prefix '{prefix}' is mounted twice");
                continue;
            }
            var definition = new MountDefinition(prefix!, type);
            try
            {
                mounts.Add(new MountedBackend(definition, factory.Create(definition, section)) { Observer = observer });
            }
            catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException or ArgumentException or IOException or FormatException)
            {
                failures.Add($"{where} ({type}): {ex.Message}");
            }
        }
        if (index == 0)
        {
            failures.Add($"{ConfigurationSection} is empty: configure at least one mount (see README, 'Configuration')");
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(ConfigurationSection, typeof(MountTable), failures);
        }
        _byLongestPrefix = [.. mounts.OrderByDescending(m => m.Mount.Prefix.Length)];
    }

    public IReadOnlyList<MountedBackend> Mounts => _byLongestPrefix;

    /// <summary>
    /// Resolves a validated logical path to its mount and the name inside it ("" when the path is the
    /// mount prefix itself). Throws NOT_FOUND when no mount matches.
    /// </summary>
    public (MountedBackend Mounted, string Name) Resolve(string path)
    {
        foreach (var mounted in _byLongestPrefix)
        {
            var prefix = mounted.Mount.Prefix;
            if (!path.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            if (path.Length == prefix.Length)
            {
                return (mounted, "");
            }
            if (path[prefix.Length] == '/')
            {
                return (mounted, path[(prefix.Length + 1)..]);
            }
        }
        BrokerException.ThrowNotFound("no mount is configured for this path");
        return default;
    }
}
