namespace SecretsBroker.Broker.Audit;

/// <summary>
/// The cap on the Redis stream's backlog (<see cref="AuditOptions.MaxBacklogEntries"/>). The audit service trims
/// entries once stored, so the stream's length (XLEN, read with every append) is the backlog. When it reaches the
/// cap (the audit service is down or too slow), the recorder stops appending and spools events locally instead,
/// and re-reads the length every replay interval; once it is below the cap the spool is replayed, only as many
/// events at a time as leave the stream within it. Several brokers each check the shared length, so the stream
/// can exceed the cap by at most one write group per broker (BatchSize events / EventsPerEntry entries).
/// Used by the recorder's one writer loop; readiness and metrics read it from other threads.
/// </summary>
public sealed partial class AuditBacklog(AuditOptions options, AuditMetrics metrics, TimeProvider time, ILogger logger)
{
    private readonly long _max = options.MaxBacklogEntries;
    private long _entries = -1;
    private int _capped;
    private DateTimeOffset _nextCheck = DateTimeOffset.MinValue;

    /// <summary>Whether a cap is configured (MaxBacklogEntries &gt; 0).</summary>
    public bool Enabled => _max > 0;

    public long Max => _max;

    /// <summary>Whether appends stopped because the backlog reached the cap.</summary>
    public bool Capped => Volatile.Read(ref _capped) == 1;

    /// <summary>The stream's length as last read, or -1 when not known yet.</summary>
    public long Entries => Interlocked.Read(ref _entries);

    /// <summary>Publishes the gauges <c>secretsbroker_audit_backlog_capped</c> and <c>secretsbroker_audit_backlog_entries</c>.</summary>
    public void Publish() => metrics.ObserveBacklog(() => Capped ? 1 : 0, () => Entries);

    /// <summary>Takes a length read from Redis (null when it could not be read: nothing changes).</summary>
    public void Observed(long? length)
    {
        if (length is not { } value)
        {
            return;
        }
        Interlocked.Exchange(ref _entries, value);
        var capped = Enabled && value >= _max;
        if (Interlocked.Exchange(ref _capped, capped ? 1 : 0) != (capped ? 1 : 0))
        {
            if (capped)
            {
                LogCapped(logger, value, _max);
            }
            else
            {
                LogUncapped(logger, value, _max);
            }
        }
        _nextCheck = time.GetUtcNow() + options.ReplayInterval;
    }

    /// <summary>While capped, whether the length is due to be read again (once per replay interval).</summary>
    public bool CheckDue() => time.GetUtcNow() >= _nextCheck;

    /// <summary>How many events may be appended now without taking the stream past the cap.</summary>
    public int Room(int wanted)
    {
        if (!Enabled || Entries < 0)
        {
            return wanted;
        }
        var entries = Math.Max(0, _max - Entries);
        return (int)Math.Min(wanted, entries * options.EventsPerEntry);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The audit stream holds {Entries} entries, at its cap Broker:Audit:MaxBacklogEntries={Max} (is the audit service consuming?): audit events go to the local spool until it drains")]
    private static partial void LogCapped(ILogger logger, long entries, long max);

    [LoggerMessage(Level = LogLevel.Information, Message = "The audit stream's backlog drained to {Entries} entries (cap {Max}): replaying the spool into it")]
    private static partial void LogUncapped(ILogger logger, long entries, long max);
}
