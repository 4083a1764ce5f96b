using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Caching;

/// <summary>
/// How one mount is cached. <see cref="Ttl"/>: how long a value is served without asking the backend.
/// <see cref="MaxStaleness"/>: the oldest a value may be (counted from its backend read) when it is
/// served because the backend is unreachable; it is at least the TTL.
/// </summary>
public sealed record MountCachePolicy(bool Enabled, TimeSpan Ttl, TimeSpan MaxStaleness);

/// <summary>
/// Per-mount cache settings, read from each mount's <c>Cache</c> section (<c>Broker:Mounts:N:Cache:Enabled</c>,
/// <c>:Ttl</c>, <c>:MaxStaleness</c>) with the <c>Broker:Cache</c> defaults. Invalid values stop the broker at start.
/// </summary>
public sealed class MountCachePolicies
{
    private readonly Dictionary<string, MountCachePolicy> _byPrefix = new(StringComparer.Ordinal);
    private readonly MountCachePolicy _default;

    public MountCachePolicies(IConfiguration configuration, IOptions<CacheOptions> options)
    {
        var defaults = options.Value;
        _default = new MountCachePolicy(true, defaults.DefaultTtl, Max(defaults.DefaultMaxStaleness, defaults.DefaultTtl));
        var failures = new List<string>();
        foreach (var mount in configuration.GetSection(MountTable.ConfigurationSection).GetChildren())
        {
            var prefix = mount["Prefix"];
            if (string.IsNullOrEmpty(prefix))
            {
                continue; // The mount table reports it.
            }
            var where = $"{MountTable.ConfigurationSection}:{mount.Key}:Cache";
            var section = mount.GetSection("Cache");
            try
            {
                var ttl = section.GetValue("Ttl", defaults.DefaultTtl);
                var maxStaleness = section.GetValue<TimeSpan?>("MaxStaleness") ?? Max(defaults.DefaultMaxStaleness, ttl);
                if (ttl <= TimeSpan.Zero)
                {
                    failures.Add($"{where}:Ttl must be greater than zero");
                }
                else if (maxStaleness < ttl)
                {
                    failures.Add($"{where}:MaxStaleness must be at least the TTL ({ttl})");
                }
                _byPrefix[prefix] = new MountCachePolicy(section.GetValue("Enabled", true), ttl, maxStaleness);
            }
            catch (InvalidOperationException)
            {
                failures.Add($"{where}: Enabled must be true or false, Ttl and MaxStaleness durations such as 00:05:00");
            }
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(CacheOptions.SectionName, typeof(MountCachePolicies), failures);
        }
    }

    public MountCachePolicy For(MountDefinition mount) => _byPrefix.GetValueOrDefault(mount.Prefix, _default);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
