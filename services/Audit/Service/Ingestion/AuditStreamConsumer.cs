using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Observability;
using SecretsBroker.Audit.Service.Store;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>
/// Reads the audit stream through the consumer group and stores what it reads. Order of work: first this
/// consumer's own pending entries (XREADGROUP from id 0, i.e. what it read before a crash or a Redis error
/// but did not acknowledge), then, every <see cref="IngestionOptions.ClaimInterval"/>, entries of dead
/// consumers (XAUTOCLAIM), then new entries (XREADGROUP &gt;). A batch is acknowledged only after the store
/// committed it; a crash in between leaves the entries pending and they are read again, and the store
/// ignores event ids it already holds. Any failure (Redis down, NOGROUP after Redis lost its data, the
/// store busy) is logged and retried with backoff; the loop never ends before shutdown.
/// <para>
/// Two batches are in flight while the stream has new entries: the next one is read (XREADGROUP COUNT) and decoded
/// (MAC check, protobuf parse, serialization) on the thread pool while the store commits the current one, so the
/// Redis round trip and the CPU work of decoding overlap the store's transaction. The prefetched entries are pending
/// for this consumer until their own commit: a failure drops them and they are read again as own pending entries.
/// </para>
/// </summary>
public sealed partial class AuditStreamConsumer(
    IConnectionMultiplexer redis,
    IAuditStore store,
    StreamEntryDecoder decoder,
    AuditMetrics metrics,
    StreamTrimmer trimmer,
    StoredEventsSignal storedSignal,
    IOptions<IngestionOptions> options,
    TimeProvider time,
    ILogger<AuditStreamConsumer> logger) : BackgroundService
{
    private readonly IngestionOptions _options = options.Value;
    private long _failures;

    /// <summary>Whether the last attempt to talk to Redis and the store succeeded (for readiness).</summary>
    public bool Healthy => Interlocked.Read(ref _failures) == 0;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var key = new RedisKey(_options.StreamKey);
        var groupReady = false;
        var readOwnPending = true;
        var nextClaim = DateTimeOffset.MinValue;
        var nextLag = DateTimeOffset.MinValue;
        Task<DecodedBatch>? prefetched = null;
        LogStarting(logger, _options.StreamKey, _options.Group, _options.ConsumerName);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var database = redis.GetDatabase();
                if (!groupReady)
                {
                    await EnsureGroupAsync(database, key).ConfigureAwait(false);
                    groupReady = true;
                }
                var worked = false;
                if (readOwnPending)
                {
                    var own = await database.StreamReadGroupAsync(key, _options.Group, _options.ConsumerName, StreamPosition.Beginning, _options.BatchSize).ConfigureAwait(false);
                    if (own.Length == 0)
                    {
                        readOwnPending = false;
                    }
                    else
                    {
                        LogOwnPending(logger, own.Length);
                        await StoreAndAcknowledgeAsync(database, key, Decode(own), stoppingToken).ConfigureAwait(false);
                        worked = true;
                    }
                }
                else
                {
                    var now = time.GetUtcNow();
                    if (now >= nextClaim)
                    {
                        worked |= await ClaimIdleAsync(database, key, stoppingToken).ConfigureAwait(false);
                        await DeleteIdleConsumersAsync(database, key).ConfigureAwait(false);
                        nextClaim = now + _options.ClaimInterval;
                    }
                    var batch = await (prefetched ?? ReadNewAsync(database, key)).ConfigureAwait(false);
                    prefetched = null;
                    if (batch.Entries > 0)
                    {
                        // Entries come in id order and batches are appended in the order they were read.
                        prefetched = Task.Run(() => ReadNewAsync(database, key), stoppingToken);
                        await StoreAndAcknowledgeAsync(database, key, batch, stoppingToken).ConfigureAwait(false);
                        worked = true;
                    }
                    if (now >= nextLag)
                    {
                        await ReadLagAsync(database, key).ConfigureAwait(false);
                        nextLag = now + _options.LagInterval;
                    }
                }
                if (Interlocked.Exchange(ref _failures, 0) > 0)
                {
                    LogRecovered(logger);
                }
                if (!worked)
                {
                    // Caught up: trim what was acknowledged since the last trim, so a drained stream is empty.
                    await trimmer.WhenIdleAsync(database, key).ConfigureAwait(false);
                    await Task.Delay(_options.PollInterval, time, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception exception)
            {
                // Start over: the group may be gone (Redis restarted empty), and what was read but not
                // acknowledged, the prefetched batch included, is still pending for this consumer.
                await DropAsync(prefetched).ConfigureAwait(false);
                prefetched = null;
                groupReady = false;
                readOwnPending = true;
                var failures = Interlocked.Increment(ref _failures);
                var delay = TimeSpan.FromMilliseconds(Math.Min(_options.MaxRetryDelay.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(failures - 1, 16))));
                LogFailed(logger, exception.GetType().Name, exception.Message, delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        await DropAsync(prefetched).ConfigureAwait(false);
    }

    private async Task EnsureGroupAsync(IDatabase database, RedisKey key)
    {
        try
        {
            // From the start of the stream, so events appended before the first audit service ran are kept.
            await database.StreamCreateConsumerGroupAsync(key, _options.Group, StreamPosition.Beginning, createStream: true).ConfigureAwait(false);
            LogGroupCreated(logger, _options.Group);
        }
        catch (RedisServerException exception) when (exception.Message.StartsWith("BUSYGROUP", StringComparison.Ordinal))
        {
            // It exists already.
        }
    }

    private async Task<bool> ClaimIdleAsync(IDatabase database, RedisKey key, CancellationToken cancellationToken)
    {
        var claimedAny = false;
        RedisValue start = "0-0";
        do
        {
            var result = await database.StreamAutoClaimAsync(key, _options.Group, _options.ConsumerName,
                (long)_options.ClaimMinIdle.TotalMilliseconds, start, _options.BatchSize).ConfigureAwait(false);
            if (result.ClaimedEntries.Length > 0)
            {
                LogClaimed(logger, result.ClaimedEntries.Length);
                await StoreAndAcknowledgeAsync(database, key, Decode(result.ClaimedEntries), cancellationToken).ConfigureAwait(false);
                claimedAny = true;
            }
            start = result.NextStartId;
        }
        while (start != "0-0" && !cancellationToken.IsCancellationRequested);
        return claimedAny;
    }

    private async Task DeleteIdleConsumersAsync(IDatabase database, RedisKey key)
    {
        foreach (var consumer in await database.StreamConsumerInfoAsync(key, _options.Group).ConfigureAwait(false))
        {
            // Nothing pending: deleting it loses nothing (a live consumer of that name is simply re-created by its next read).
            if (consumer.Name != _options.ConsumerName && consumer.PendingMessageCount == 0
                && consumer.IdleTimeInMilliseconds >= (long)_options.DeleteIdleConsumersAfter.TotalMilliseconds)
            {
                await database.StreamDeleteConsumerAsync(key, _options.Group, consumer.Name).ConfigureAwait(false);
                LogDeletedConsumer(logger, consumer.Name, consumer.IdleTimeInMilliseconds);
            }
        }
    }

    /// <summary>The next entries nobody read yet (XREADGROUP &gt; COUNT BatchSize), decoded.</summary>
    private async Task<DecodedBatch> ReadNewAsync(IDatabase database, RedisKey key) =>
        Decode(await database.StreamReadGroupAsync(key, _options.Group, _options.ConsumerName, StreamPosition.NewMessages, _options.BatchSize).ConfigureAwait(false));

    /// <summary>Waits for a prefetched read that will not be stored (its entries stay pending), ignoring how it ended.</summary>
    private static async Task DropAsync(Task<DecodedBatch>? prefetched)
    {
        if (prefetched is not null)
        {
            try
            {
                await prefetched.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Already reported by whatever failed first; its entries are re-read as this consumer's pending ones.
            }
        }
    }

    private sealed record DecodedBatch(RedisValue[] Ids, List<IncomingEvent> Events, List<RejectedEntry> Rejected, List<AuditEventMacFailure>? Unauthenticated)
    {
        public int Entries => Ids.Length;
    }

    private DecodedBatch Decode(StreamEntry[] entries)
    {
        var events = new List<IncomingEvent>(entries.Length);
        var rejected = new List<RejectedEntry>();
        List<AuditEventMacFailure>? unauthenticatedEvents = null;
        var ids = new RedisValue[entries.Length];
        for (var i = 0; i < entries.Length; i++)
        {
            ids[i] = entries[i].Id;
            if (entries[i].IsNull)
            {
                // XAUTOCLAIM may return an entry that was trimmed from the stream: nothing to store.
                continue;
            }
            foreach (var (incoming, reject, sealedHere, unauthenticated) in decoder.Decode(entries[i]))
            {
                if (incoming is not null)
                {
                    events.Add(incoming);
                    if (sealedHere)
                    {
                        LogSealedOnArrival(logger, incoming.Event.Id);
                    }
                }
                else
                {
                    rejected.Add(reject!);
                    LogRejected(logger, reject!.StreamId, reject.Reason, reject.Size);
                    if (unauthenticated != AuditEventMacFailure.None)
                    {
                        (unauthenticatedEvents ??= []).Add(unauthenticated);
                    }
                }
            }
        }
        return new DecodedBatch(ids, events, rejected, unauthenticatedEvents);
    }

    private async Task StoreAndAcknowledgeAsync(IDatabase database, RedisKey key, DecodedBatch batch, CancellationToken cancellationToken)
    {
        var (ids, events, rejected, unauthenticatedEvents) = batch;
        var result = await store.AppendAsync(events, rejected, cancellationToken).ConfigureAwait(false);
        // Only now is the batch durable; acknowledge it.
        storedSignal.Notify(); // wakes AuditLog.Tail streams
        await database.StreamAcknowledgeAsync(key, _options.Group, ids).ConfigureAwait(false);
        await trimmer.AfterAcknowledgedAsync(database, key, ids.Length).ConfigureAwait(false);

        metrics.Stored(result.Stored);
        if (result.Duplicates > 0)
        {
            metrics.Duplicates(result.Duplicates);
            LogDuplicates(logger, result.Duplicates);
        }
        if (rejected.Count > 0)
        {
            metrics.Rejected(rejected.Count);
        }
        foreach (var failure in unauthenticatedEvents ?? [])
        {
            metrics.Unauthenticated(failure);
        }
        LogBatch(logger, ids.Length, result.Stored.Count, result.Duplicates, rejected.Count);
    }

    private async Task ReadLagAsync(IDatabase database, RedisKey key)
    {
        foreach (var group in await database.StreamGroupInfoAsync(key).ConfigureAwait(false))
        {
            if (group.Name == _options.Group)
            {
                metrics.ConsumerState(group.Lag, group.PendingMessageCount);
            }
        }
        metrics.StreamLength(await database.StreamLengthAsync(key).ConfigureAwait(false));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Consuming audit stream {Stream} as {Consumer} in group {Group}")]
    private static partial void LogStarting(ILogger logger, string stream, string group, string consumer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created consumer group {Group}")]
    private static partial void LogGroupCreated(ILogger logger, string group);

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-reading {Count} pending entries of this consumer")]
    private static partial void LogOwnPending(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Claimed {Count} idle pending entries of other consumers")]
    private static partial void LogClaimed(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed consumer {Consumer} from the group: nothing pending, idle {IdleMilliseconds} ms")]
    private static partial void LogDeletedConsumer(ILogger logger, string consumer, long idleMilliseconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Batch of {Entries} entries: {Stored} stored, {Duplicates} duplicates, {Rejected} rejected")]
    private static partial void LogBatch(ILogger logger, int entries, int stored, int duplicates, int rejected);

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignored {Count} events already stored (delivered again)")]
    private static partial void LogDuplicates(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected stream entry {StreamId} ({Reason}, {Size} bytes); recorded and acknowledged")]
    private static partial void LogRejected(ILogger logger, string streamId, string reason, int size);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event {EventId} arrived with a plaintext path; sealed it before storing (brokers should seal paths)")]
    private static partial void LogSealedOnArrival(ILogger logger, string eventId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit ingestion failed ({ExceptionType}: {Reason}); retrying in {DelayMilliseconds} ms")]
    private static partial void LogFailed(ILogger logger, string exceptionType, string reason, double delayMilliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Audit ingestion recovered")]
    private static partial void LogRecovered(ILogger logger);
}
