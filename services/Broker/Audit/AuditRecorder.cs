using System.Threading.Channels;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// The audit pipeline of one broker: callers hand over an event and, in strict mode, wait until the
/// Redis stream or the local spool accepted it. One writer loop owns stream and spool, so events keep
/// their order: while the spool holds events, new ones go behind them, and the spool is replayed into
/// the stream, oldest first, once Redis answers again.
/// </summary>
public sealed partial class AuditRecorder : BackgroundService
{
    private readonly Channel<PendingEvent> _queue;
    private readonly IAuditStream _stream;
    private readonly Func<AuditSpool> _openSpool;
    private readonly AuditOptions _options;
    private readonly AuditMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly AuditBacklog _backlog;
    private AuditSpool? _spool;

    // The writer loop's one list of the events it appends (only that loop touches it).
    private readonly List<byte[]> _batchEvents = [];

    /// <summary>What a strict-mode read is answered (UNAVAILABLE) when its event could not be recorded.</summary>
    private const string Unrecorded = "the audit trail cannot record this access right now; retry later";

    public AuditRecorder(IAuditStream stream, IOptions<AuditOptions> options, IHostEnvironment environment, AuditMetrics metrics,
        TimeProvider time, ILogger<AuditRecorder> logger)
    {
        _stream = stream;
        _options = options.Value;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _queue = Channel.CreateBounded<PendingEvent>(new BoundedChannelOptions(_options.QueueCapacity) { SingleReader = true });
        var directory = Path.Combine(environment.ContentRootPath, _options.SpoolDirectory);
        _openSpool = () => new AuditSpool(directory);
        _backlog = new AuditBacklog(_options, metrics, time, logger);
    }

    public bool Strict => _options.Strict;

    /// <summary>Whether the local spool opened at start (readiness: without it, a Redis outage leaves nowhere to record events).</summary>
    public bool SpoolUsable => _spool is not null;

    /// <summary>The stream's backlog cap (<see cref="AuditOptions.MaxBacklogEntries"/>).</summary>
    public AuditBacklog Backlog => _backlog;

    /// <summary>Events waiting in the spool for Redis.</summary>
    public long SpoolDepth => _spool?.PendingRecords ?? 0;

    /// <summary>
    /// Hands an event to the pipeline. In strict mode the task completes when the event is durable and
    /// faults with an UNAVAILABLE <see cref="BrokerException"/> when neither the stream nor the spool took it.
    /// </summary>
    public Task RecordAsync(byte[] eventBytes, CancellationToken cancellationToken) => RecordManyAsync([eventBytes], cancellationToken);

    /// <summary>
    /// Hands a group of events over at once (a batch read's): one queue entry and, in strict mode, one
    /// completion for the group, which faults with an UNAVAILABLE <see cref="BrokerException"/> unless every
    /// event of the group was accepted by the stream or the spool.
    /// </summary>
    public Task RecordManyAsync(byte[][] events, CancellationToken cancellationToken)
    {
        var pending = new PendingEvent(events, _options.Strict ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null);
        // Not async unless the queue is full: a read awaits the group's own completion directly. That wait is
        // not cancellable: the writer settles every group within StreamTimeout (stream, else spool), and a
        // cancellable wait cost a registration on the call's token for every read.
        if (!_queue.Writer.TryWrite(pending))
        {
            return EnqueueSlowlyAsync(pending, cancellationToken);
        }
        return pending.Accepted?.Task ?? Task.CompletedTask;
    }

    private async Task EnqueueSlowlyAsync(PendingEvent pending, CancellationToken cancellationToken)
    {
        await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        if (pending.Accepted is { } accepted)
        {
            await accepted.Task.ConfigureAwait(false);
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Opened at start so an unusable spool directory is reported at once, not on the first outage.
        try
        {
            _spool = _openSpool();
            _metrics.ObserveSpool(() => _spool?.PendingRecords ?? 0);
            _backlog.Publish();
            if (_spool.HasPending)
            {
                LogSpoolFound(_spool.PendingRecords);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSpoolUnusable(ex.GetType().Name);
        }
        if (!_stream.IsConfigured)
        {
            LogNoStream();
        }
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        _spool?.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<PendingEvent>(_options.BatchSize);
        var reader = _queue.Reader;
        while (await WaitForWorkAsync(reader, stoppingToken).ConfigureAwait(false))
        {
            // BatchSize counts events; a group is never split, so one larger group may exceed it.
            var events = 0;
            while (events < _options.BatchSize && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                events += pending.Events.Length;
            }
            await ReplaySpoolAsync(stoppingToken).ConfigureAwait(false);
            if (batch.Count > 0)
            {
                await WriteAsync(batch, stoppingToken).ConfigureAwait(false);
                batch.Clear();
            }
        }
        // Drain what callers already handed over: to the spool, which needs no network.
        while (reader.TryRead(out var pending))
        {
            batch.Add(pending);
        }
        if (batch.Count > 0)
        {
            Spool(batch, 0, 0);
        }
    }

    /// <summary>
    /// Waits for events to write; while the spool holds events, also wakes every replay interval to try
    /// Redis again. False once the broker stops.
    /// </summary>
    private async Task<bool> WaitForWorkAsync(ChannelReader<PendingEvent> reader, CancellationToken stoppingToken)
    {
        try
        {
            // Also wake while the backlog is capped, to see it drain even when no event comes.
            if (!(_spool is { HasPending: true } || _backlog.Capped) || !_stream.IsConfigured)
            {
                return await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false);
            }
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var work = reader.WaitToReadAsync(wake.Token).AsTask();
            var replayDue = Task.Delay(_options.ReplayInterval, _time, wake.Token);
            var first = await Task.WhenAny(work, replayDue).ConfigureAwait(false);
            await wake.CancelAsync().ConfigureAwait(false);
            return first == work ? await work.ConfigureAwait(false) : !stoppingToken.IsCancellationRequested;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task WriteAsync(List<PendingEvent> batch, CancellationToken cancellationToken)
    {
        var accepted = 0;
        var appended = 0;
        // At the backlog cap events go to the spool (when there is one: without it, the stream is the only record).
        if (_stream.IsConfigured && _spool?.HasPending != true && !(_backlog.Capped && _spool is not null))
        {
            _batchEvents.Clear();
            foreach (var pending in batch)
            {
                _batchEvents.AddRange(pending.Events);
            }
            appended = await AppendToStreamAsync(_batchEvents, cancellationToken).ConfigureAwait(false);
            _backlog.Observed(_stream.LengthAfterAppend);
            // Appends are a prefix: the groups wholly inside it are done.
            for (var covered = 0; accepted < batch.Count && covered + batch[accepted].Events.Length <= appended; accepted++)
            {
                covered += batch[accepted].Events.Length;
                batch[accepted].Accepted?.TrySetResult();
            }
            _metrics.Recorded(appended);
        }
        if (accepted < batch.Count)
        {
            // The first group left may have reached the stream in part; only its other events are spooled.
            var inStream = appended - batch.Take(accepted).Sum(b => b.Events.Length);
            Spool(batch, accepted, inStream);
        }
    }

    private void Spool(List<PendingEvent> batch, int start, int skipFirstEvents)
    {
        var rest = batch.GetRange(start, batch.Count - start);
        var events = rest.SelectMany((pending, index) => index == 0 ? pending.Events.Skip(skipFirstEvents) : pending.Events).ToList();
        try
        {
            var spool = _spool ?? throw new IOException("the spool could not be opened at start");
            spool.Append(events);
            foreach (var pending in rest)
            {
                pending.Accepted?.TrySetResult();
            }
            _metrics.Spooled(events.Count);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSpoolFailed(events.Count, ex.GetType().Name);
            _metrics.Failed(events.Count);
            foreach (var pending in rest)
            {
                pending.Accepted?.TrySetException(new BrokerException(BrokerErrorKind.Unavailable, Unrecorded));
            }
        }
    }

    private async Task ReplaySpoolAsync(CancellationToken cancellationToken)
    {
        if (_spool is not { } spool || !_stream.IsConfigured || !(spool.HasPending || _backlog.Capped))
        {
            return;
        }
        if (_backlog.Capped)
        {
            // Re-read the backlog once per replay interval; replay only once it is below the cap.
            if (!_backlog.CheckDue())
            {
                return;
            }
            _backlog.Observed(await _stream.ReadLengthAsync(cancellationToken).ConfigureAwait(false));
            if (_backlog.Capped)
            {
                return;
            }
        }
        while (spool.HasPending)
        {
            // No further than the cap: a drained backlog takes the spool back a cap's worth at a time.
            var room = _backlog.Room(_options.BatchSize);
            if (room <= 0)
            {
                return;
            }
            var (events, endOffset) = spool.ReadPending(room);
            if (events.Count == 0)
            {
                return;
            }
            var appended = await AppendToStreamAsync(events, cancellationToken).ConfigureAwait(false);
            _backlog.Observed(_stream.LengthAfterAppend);
            if (appended < events.Count)
            {
                // Part of a group may have reached the stream; it is offered again next time, and the
                // audit service stores each event id once.
                return;
            }
            spool.MarkReplayed(endOffset, events.Count);
            _metrics.Replayed(events.Count);
            if (!spool.HasPending)
            {
                LogSpoolReplayed();
            }
        }
    }

    private async Task<int> AppendToStreamAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.StreamTimeout);
        try
        {
            return await _stream.AppendAsync(events, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The stream timed out, or the broker is stopping (perhaps while the first connect to Redis is still
            // under way): either way the events go to the spool, which needs no network, and are counted there.
            return 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Whatever went wrong with the stream, the spool still takes the events: the loop must not die.
            LogStreamFailed(ex.GetType().Name);
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The audit spool holds {Count} events from before this start; they are replayed when Redis answers")]
    private partial void LogSpoolFound(long count);

    [LoggerMessage(Level = LogLevel.Error, Message = "The audit spool directory cannot be used ({ErrorType}); in strict mode reads fail while Redis is unreachable")]
    private partial void LogSpoolUnusable(string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No Redis is configured for audit events: they are kept in the local spool only. Configure Broker:Redis to deliver them to the audit service")]
    private partial void LogNoStream();

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} audit events could not be spooled ({ErrorType})")]
    private partial void LogSpoolFailed(int count, string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Appending audit events to the stream failed ({ErrorType}); they go to the spool")]
    private partial void LogStreamFailed(string errorType);

    [LoggerMessage(Level = LogLevel.Information, Message = "The audit spool was replayed into the stream")]
    private partial void LogSpoolReplayed();

    private sealed record PendingEvent(byte[][] Events, TaskCompletionSource? Accepted);
}

