using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Watching;

/// <summary>Rotation detection for static secrets (<c>Broker:Watch</c>).</summary>
public sealed class WatchOptions
{
    public const string SectionName = "Broker:Watch";

    /// <summary>How often watched secrets of a mount are polled for a new version, unless the mount has its own interval.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "1.00:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Poll intervals by mount prefix, for example <c>Broker:Watch:MountIntervals:kv = 00:00:10</c>.</summary>
    public Dictionary<string, TimeSpan> MountIntervals { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Most paths plus prefixes one WatchSecrets call may name.</summary>
    [Range(1, 10_000)]
    public int MaxTargetsPerWatch { get; set; } = 100;

    /// <summary>Most secrets a watched prefix may expand to.</summary>
    [Range(1, 100_000)]
    public int MaxSecretsPerPrefix { get; set; } = 1000;

    public TimeSpan IntervalFor(string mount) => MountIntervals.TryGetValue(mount, out var interval) && interval > TimeSpan.Zero ? interval : PollInterval;
}

[OptionsValidator]
public sealed partial class WatchOptionsValidator : IValidateOptions<WatchOptions>;
