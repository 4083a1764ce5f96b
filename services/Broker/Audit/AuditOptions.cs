using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;

namespace SecretsBroker.Broker.Audit;

/// <summary>The broker's audit trail (<c>Broker:Audit</c>), validated at start.</summary>
public sealed class AuditOptions
{
    public const string SectionName = "Broker:Audit";

    /// <summary>
    /// Strict (the default): a secret is returned only after its event was accepted by the Redis stream
    /// or the local spool; when neither can take it the call fails UNAVAILABLE. Non-strict returns values
    /// whatever happens to their events (and counts the losses).
    /// </summary>
    public bool Strict { get; set; } = true;

    /// <summary>The deployment's audit key: base64 of 32 random bytes, the same for every broker and the audit service.</summary>
    [Required(ErrorMessage = "Broker:Audit:Key is required: base64 of 32 random bytes (openssl rand -base64 32), shared with the audit service")]
    public string? Key { get; set; }

    /// <summary>
    /// The id of <see cref="EventKey"/>, carried in every event's MAC so the audit service knows which key to check it
    /// with (<c>Audit:EventKeys:&lt;id&gt;</c> there). Set both, or neither: then the MAC key is derived from <see cref="Key"/>
    /// (id <c>audit-key</c>).
    /// </summary>
    public string? EventKeyId { get; set; }

    /// <summary>A dedicated key authenticating events in the stream (base64 of 32 random bytes), for rotating it on its own.</summary>
    public string? EventKey { get; set; }

    /// <summary>The key this broker authenticates its events with (<see cref="EventKey"/>, or the one derived from <see cref="Key"/>).</summary>
    public AuditEventMacKey CreateEventMacKey() =>
        string.IsNullOrWhiteSpace(EventKey) ? AuditEventMacKey.FromAuditKey(Key!) : AuditEventMacKey.FromBase64(EventKeyId!, EventKey);

    /// <summary>The Redis stream events are appended to.</summary>
    [Required]
    public string StreamKey { get; set; } = SecretsBroker.Audit.Contracts.AuditStream.DefaultKey;

    /// <summary>Where events wait while Redis is unreachable (relative to the content root). Must be durable storage.</summary>
    [Required]
    public string SpoolDirectory { get; set; } = "data/audit-spool";

    /// <summary>
    /// Without Redis, write audit events to this file as JSON lines instead of keeping them in the spool (relative
    /// to the content root; Development: data/audit-events.jsonl). Ignored when Redis is configured.
    /// </summary>
    public string? LocalFile { get; set; }

    /// <summary>Cap of <see cref="LocalFile"/>: past it the file is rotated to &lt;file&gt;.1 and the previous .1 (the oldest events) dropped.</summary>
    [Range(4096L, 1L << 40)]
    public long LocalFileMaxBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>Most events written to the stream (or spool) in one group; a batch read's events are never split, so one batch may exceed it.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 256;

    /// <summary>
    /// Most events in one stream entry (the entry repeats its <c>event</c> field once per event). One XADD
    /// for a group instead of one per event is most of what the stream costs under load. Set 1 for an audit
    /// service older than multi-event entries, which reads only the first event of an entry.
    /// </summary>
    [Range(1, 1_000)]
    public int EventsPerEntry { get; set; } = 100;

    /// <summary>Queue entries (one event, or the events of one batch read) waiting to be written before callers are held back.</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>How long one stream write may take before its events go to the spool instead.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan StreamTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Most entries the Redis stream may hold (XLEN; the audit service trims what it stored). At the cap brokers stop
    /// appending and spool events locally (strict reads still wait for the spool), readiness is Degraded and
    /// <c>secretsbroker_audit_backlog_capped</c> is 1; the spool is replayed once the stream is below the cap again.
    /// 0 disables the cap. An entry holds up to <see cref="EventsPerEntry"/> events (about 0.4 KB each).
    /// </summary>
    [Range(0L, long.MaxValue)]
    public long MaxBacklogEntries { get; set; } = 50_000;

    /// <summary>How often a spool with events is replayed into the stream.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ReplayInterval { get; set; } = TimeSpan.FromSeconds(1);
}

[OptionsValidator]
public sealed partial class AuditOptionsValidator : IValidateOptions<AuditOptions>;

/// <summary>The audit key check shared with the audit service (<see cref="AuditKey.Problem"/>).</summary>
public sealed class AuditKeyValidator : IValidateOptions<AuditOptions>
{
    public ValidateOptionsResult Validate(string? name, AuditOptions options)
    {
        if (AuditKey.Problem(options.Key) is { } problem)
        {
            return ValidateOptionsResult.Fail($"{AuditOptions.SectionName}:Key: {problem}");
        }
        var hasId = !string.IsNullOrWhiteSpace(options.EventKeyId);
        if (hasId != !string.IsNullOrWhiteSpace(options.EventKey))
        {
            return ValidateOptionsResult.Fail($"{AuditOptions.SectionName}:EventKeyId and {AuditOptions.SectionName}:EventKey go together: set both (a dedicated event key) or neither (derived from the audit key)");
        }
        try
        {
            using var _ = options.CreateEventMacKey();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            // The message never contains the key itself.
            return ValidateOptionsResult.Fail($"{AuditOptions.SectionName}:EventKey: {e.Message}");
        }
    }
}
