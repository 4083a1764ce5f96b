using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;

namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>How the service reads the audit stream (<c>Audit:Ingestion</c>), validated at start.</summary>
public sealed class IngestionOptions
{
    public const string SectionName = "Audit:Ingestion";

    /// <summary>StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379</c> or <c>redis:6379,password=...</c>.</summary>
    [Required(ErrorMessage = "Audit:Ingestion:Redis is required (a StackExchange.Redis configuration string such as 127.0.0.1:6379)")]
    public string Redis { get; set; } = "";

    /// <summary>The stream brokers append to.</summary>
    [Required]
    public string StreamKey { get; set; } = AuditStream.DefaultKey;

    /// <summary>The consumer group every audit-service replica joins.</summary>
    [Required]
    public string Group { get; set; } = "secretsbroker-audit";

    /// <summary>
    /// This process's consumer name. Keep it stable across restarts of the same replica (the default is
    /// the host name) so a restarted replica re-reads its own pending entries first; entries of a
    /// consumer that never comes back are claimed by the others after <see cref="ClaimMinIdle"/>.
    /// </summary>
    [Required]
    public string ConsumerName { get; set; } = Environment.MachineName;

    /// <summary>Most entries read, stored in one transaction and acknowledged at a time.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 200;

    /// <summary>How long to wait before reading again when the stream had nothing new.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Pending entries idle this long belong to a consumer presumed dead and are claimed (XAUTOCLAIM).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan ClaimMinIdle { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often to look for entries to claim.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan ClaimInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Consumers of the group (other than this one) with nothing pending and idle this long are removed
    /// (XGROUP DELCONSUMER), so replicas that came and went under changing names do not pile up.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "365.00:00:00")]
    public TimeSpan DeleteIdleConsumersAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Longest wait between retries while Redis or the store fails (the wait doubles from 100 ms up to this).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Acknowledged entries after which the stream is trimmed below what every consumer group still needs
    /// (<see cref="StreamTrimmer"/>); it is also trimmed whenever the consumer has caught up.
    /// </summary>
    [Range(1, 1_000_000)]
    public int TrimAfterEntries { get; set; } = 1000;

    /// <summary>How often the consumer lag and pending count are read for the metrics.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan LagInterval { get; set; } = TimeSpan.FromSeconds(5);
}

[OptionsValidator]
public sealed partial class IngestionOptionsValidator : IValidateOptions<IngestionOptions>;
