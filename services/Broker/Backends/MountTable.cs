using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends;

/// <summary>
/// Routes logical paths to backends: the longest configured prefix that matches whole segments wins.
/// Built once at start from <c>Broker:Mounts</c>; an invalid table stops the broker with a clear message.
/// </summary>
public sealed class MountTable : IDisposable
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
                mounts.Add(new MountedBackend(definition, factory.Create(definition, section), observer));
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

    /// <summary>Releases what backends hold (a local file's watcher, HTTP handlers).</summary>
    public void Dispose()
    {
        foreach (var mounted in _byLongestPrefix)
        {
            (mounted.Backend as IDisposable)?.Dispose();
        }
    }

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

    /// <summary>
    /// Resolves a validated logical path to a capability of its mount's backend (every call observed) and the name
    /// inside the mount; FAILED_PRECONDITION with <paramref name="unsupported"/> when the backend lacks it, and
    /// INVALID_ARGUMENT when the path names the mount itself and <paramref name="allowMountRoot"/> is false.
    /// </summary>
    public (T Capability, MountedBackend Mounted, string Name) Resolve<T>(string path, string unsupported, bool allowMountRoot = false)
        where T : class, ISecretBackend
    {
        var (mounted, name) = Resolve(path);
        if (mounted.Capability<T>() is not { } capability)
        {
            BrokerException.ThrowFailedPrecondition(unsupported);
            return default;
        }
        if (!allowMountRoot && name.Length == 0)
        {
            BrokerException.ThrowInvalidArgument("path names a mount, not a secret or role; add the name after the mount prefix");
        }
        return (capability, mounted, name);
    }
}
