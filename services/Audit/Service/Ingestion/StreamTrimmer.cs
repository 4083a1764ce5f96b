using System.Globalization;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Service.Observability;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>
/// Keeps the audit stream bounded: once entries are stored and acknowledged they are removed with
/// <c>XTRIM key MINID id</c> (https://redis.io/docs/latest/commands/xtrim/: removes entries whose id is lower than
/// <c>id</c>). The id is the lowest of, over every consumer group of the stream (ours, and any other reader such
/// as a SIEM's group): its oldest pending entry (delivered, not acknowledged: XPENDING), or else the id just after
/// its last-delivered-id (XINFO GROUPS; entries after it were never delivered). So no entry that a group has not
/// acknowledged, and therefore none this service has not stored, is ever trimmed.
/// <para>
/// Order matters without a script: last-delivered-id is read <em>before</em> XPENDING. Any entry at or below
/// that id which is not acknowledged by the time XPENDING runs is still in the pending list and lowers the bound;
/// entries delivered in between have ids above it. (Read the other way round, entries delivered and still pending
/// after the XPENDING read could fall below the bound.)
/// </para>
/// <para>
/// Trims run after <see cref="IngestionOptions.TrimAfterEntries"/> acknowledged entries, and whenever the consumer
/// finds nothing new and has acknowledged something since the last trim: a drained stream holds 0 entries; under
/// load, the undelivered and pending entries plus fewer than TrimAfterEntries + BatchSize acknowledged ones.
/// </para>
/// </summary>
public sealed partial class StreamTrimmer(IOptions<IngestionOptions> options, AuditMetrics metrics, ILogger<StreamTrimmer> logger)
{
    private readonly IngestionOptions _options = options.Value;
    private long _acknowledgedSinceTrim;

    /// <summary>Called once a batch is stored and acknowledged: trims when enough entries were acknowledged since the last trim.</summary>
    public Task AfterAcknowledgedAsync(IDatabase database, RedisKey key, int entries)
    {
        var acknowledged = Interlocked.Add(ref _acknowledgedSinceTrim, entries);
        return acknowledged >= _options.TrimAfterEntries ? TrimAsync(database, key) : Task.CompletedTask;
    }

    /// <summary>Called when the consumer found nothing new: trims what was acknowledged since the last trim.</summary>
    public Task WhenIdleAsync(IDatabase database, RedisKey key) =>
        Interlocked.Read(ref _acknowledgedSinceTrim) > 0 ? TrimAsync(database, key) : Task.CompletedTask;

    /// <summary>Trims below what every group still needs; returns how many entries were removed.</summary>
    public async Task<long> TrimAsync(IDatabase database, RedisKey key)
    {
        Interlocked.Exchange(ref _acknowledgedSinceTrim, 0);
        var groups = await database.StreamGroupInfoAsync(key).ConfigureAwait(false);
        if (groups.Length == 0)
        {
            return 0;
        }
        StreamId? bound = null;
        foreach (var group in groups)
        {
            // A group's last-delivered-id first (see the class comment), then its pending list.
            var needed = StreamId.Parse(group.LastDeliveredId ?? "0-0").Next();
            if (group.PendingMessageCount > 0)
            {
                var pending = await database.StreamPendingAsync(key, group.Name).ConfigureAwait(false);
                if (pending.PendingMessageCount > 0 && StreamId.Parse(pending.LowestPendingMessageId!)< needed)
                {
                    needed = StreamId.Parse(pending.LowestPendingMessageId!);
                }
            }
            if (bound is null || needed < bound.Value)
            {
                bound = needed;
            }
        }
        var removed = (long)await database.ExecuteAsync("XTRIM", key, "MINID", bound!.Value.ToString()).ConfigureAwait(false);
        if (removed > 0)
        {
            metrics.Trimmed(removed);
            LogTrimmed(logger, removed, bound.Value.ToString());
        }
        return removed;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Trimmed the audit stream: {Removed} stored and acknowledged entries below {MinId} removed")]
    private static partial void LogTrimmed(ILogger logger, long removed, string minId);
}

/// <summary>A stream entry id <c>ms-seq</c> (https://redis.io/docs/latest/develop/data-types/streams/#entry-ids).</summary>
public readonly record struct StreamId(ulong Milliseconds, ulong Sequence) : IComparable<StreamId>
{
    public static StreamId Parse(string id)
    {
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return dash < 0
            ? new StreamId(ulong.Parse(id, CultureInfo.InvariantCulture), 0)
            : new StreamId(ulong.Parse(id.AsSpan(0, dash), CultureInfo.InvariantCulture), ulong.Parse(id.AsSpan(dash + 1), CultureInfo.InvariantCulture));
    }

    /// <summary>The smallest id after this one.</summary>
    public StreamId Next() => Sequence == ulong.MaxValue ? new StreamId(Milliseconds + 1, 0) : this with { Sequence = Sequence + 1 };

    public int CompareTo(StreamId other) => Milliseconds != other.Milliseconds ? Milliseconds.CompareTo(other.Milliseconds) : Sequence.CompareTo(other.Sequence);

    public static bool operator <(StreamId left, StreamId right) => left.CompareTo(right) < 0;

    public static bool operator >(StreamId left, StreamId right) => left.CompareTo(right) > 0;

    public static bool operator <=(StreamId left, StreamId right) => left.CompareTo(right) <= 0;

    public static bool operator >=(StreamId left, StreamId right) => left.CompareTo(right) >= 0;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Milliseconds}-{Sequence}");
}
