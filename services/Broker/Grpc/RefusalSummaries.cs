using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>How repeated refusals at the edge are audited (<c>Broker:RefusalAudit</c>).</summary>
public sealed class RefusalAuditOptions
{
    public const string SectionName = "Broker:RefusalAudit";

    /// <summary>How long refusals of one kind from one source are counted before their summary event is recorded.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Kinds of refusal (source, caller, action, status, reason) counted apart in one interval; beyond it, refusals from
    /// further sources are counted together under the source <c>*</c>. Bounds memory and events per interval.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxTracked { get; set; } = 10_000;
}

[OptionsValidator]
public sealed partial class RefusalAuditOptionsValidator : IValidateOptions<RefusalAuditOptions>;

/// <summary>Records one refusal as an audit event (AccessAuditor.RefusedAsync).</summary>
public delegate Task RefusalRecorder(AccessContext access, AuditEntry entry, BrokerException error, CancellationToken cancellationToken);

/// <summary>
/// Audits repeated refusals as counted events, so a flood of bad calls costs a bounded number of events and still leaves
/// every refusal accounted for. Per kind of refusal (source address without port, caller, action, status and reason) and
/// interval, the first refusal is recorded as its own event (with its request id and token HMAC); later ones are only
/// counted, and at the interval's end one summary event carries the count in its reason: "... (repeated N more times from
/// T1 to T2)", with the source address and no request id. Stopping records the open summaries.
/// </summary>
public sealed partial class RefusalSummaries(RefusalRecorder record, IOptions<RefusalAuditOptions> options, TimeProvider time,
    ILogger<RefusalSummaries> logger) : BackgroundService
{
    /// <summary>The source of a summary that counts the refusals from sources beyond <see cref="RefusalAuditOptions.MaxTracked"/>.</summary>
    public const string OtherSources = "*";

    private readonly record struct Key(string Source, string? Subject, string? AuthMethod, string Action, BrokerErrorKind Kind, string Reason);

    private sealed class Tally(CallerIdentity? caller)
    {
        public CallerIdentity? Caller { get; } = caller;

        public long Folded { get; set; }

        public DateTimeOffset FirstFolded { get; set; }

        public DateTimeOffset LastFolded { get; set; }
    }

    private readonly RefusalAuditOptions _options = options.Value;
    private readonly Lock _gate = new();
    private Dictionary<Key, Tally> _tallies = [];
    private long _folded;

    /// <summary>Refusals counted into summaries instead of recorded one by one, since start.</summary>
    public long FoldedSinceStart => Interlocked.Read(ref _folded);

    /// <summary>Records the refusal, or counts it when one like it from the same source was recorded in this interval.</summary>
    public Task RefusedAsync(AccessContext access, AuditEntry entry, BrokerException error, CancellationToken cancellationToken)
    {
        var key = new Key(SourceOf(access.SourceAddress), access.Caller?.Subject, access.Caller?.AuthMethod, entry.Action, error.Kind, error.Message);
        lock (_gate)
        {
            if (!_tallies.ContainsKey(key) && _tallies.Count >= _options.MaxTracked)
            {
                key = key with { Source = OtherSources, Subject = null, AuthMethod = null };
            }
            if (_tallies.TryGetValue(key, out var tally))
            {
                var now = time.GetUtcNow();
                if (tally.Folded++ == 0)
                {
                    tally.FirstFolded = now;
                }
                tally.LastFolded = now;
                Interlocked.Increment(ref _folded);
                return Task.CompletedTask;
            }
            _tallies[key] = new Tally(key.Source == OtherSources ? null : access.Caller);
        }
        return record(access, entry, error, cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: StopAsync records what is left.
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Ends the interval: one summary event for each kind of refusal that was counted.</summary>
    private async Task FlushAsync()
    {
        Dictionary<Key, Tally> ended;
        lock (_gate)
        {
            ended = _tallies;
            _tallies = [];
        }
        var summaries = 0;
        foreach (var (key, tally) in ended)
        {
            if (tally.Folded == 0)
            {
                continue;
            }
            var access = new AccessContext(tally.Caller, "", key.Source, "", "", Stopwatch.GetTimestamp());
            var reason = $"{key.Reason} (repeated {tally.Folded} more times from {tally.FirstFolded:O} to {tally.LastFolded:O})";
            // Not cancellable: the counted refusals have no other record.
            await record(access, new AuditEntry(key.Action), new BrokerException(key.Kind, reason), CancellationToken.None).ConfigureAwait(false);
            summaries++;
        }
        if (summaries > 0)
        {
            LogSummarized(summaries);
        }
    }

    /// <summary>The source address without its port ("ipv4:10.0.0.7:40000" is "ipv4:10.0.0.7"): each connection has a new port.</summary>
    private static string SourceOf(string peer)
    {
        var colon = peer.LastIndexOf(':');
        return (peer.StartsWith("ipv4:", StringComparison.Ordinal) || peer.StartsWith("ipv6:", StringComparison.Ordinal)) && colon > 5
            ? peer[..colon]
            : peer;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Recorded {Count} summaries of repeated refusals")]
    private partial void LogSummarized(int count);
}
