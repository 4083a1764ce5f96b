using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// Appends audit events to the Redis stream over the broker's one Redis connection. A group of events
/// goes into as few entries as <see cref="AuditOptions.EventsPerEntry"/> allows, each entry repeating the
/// <c>event</c> field once per event (<see cref="AuditStream"/>): one XADD per entry instead of per event
/// was most of the Redis cost of an audited read under load. The entries are pipelined: one round trip.
/// Without a configured Redis there is no stream and events stay in the spool. Every <c>event</c> field is followed
/// by its <c>mac</c> field (<see cref="AuditEventMacKey"/>), computed here so spooled events are authenticated with
/// the key in use when they reach the stream.
/// </summary>
public sealed class RedisAuditStream(IServiceProvider services, IOptions<AuditOptions> options, AuditEventMacKey macKey) : IAuditStream
{
    private readonly RedisConnection? _connection = services.GetService<RedisConnection>();
    private readonly RedisKey _key = options.Value.StreamKey;
    private readonly int _eventsPerEntry = options.Value.EventsPerEntry;

    private readonly bool _measure = options.Value.MaxBacklogEntries > 0;
    private long _length = -1;

    public bool IsConfigured => _connection is not null;

    /// <inheritdoc />
    public long? LengthAfterAppend => Interlocked.Read(ref _length) is var length and >= 0 ? length : null;

    /// <inheritdoc />
    public async Task<long?> ReadLengthAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return null;
        }
        try
        {
            var multiplexer = await _connection.GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            return multiplexer.IsConnected ? await multiplexer.GetDatabase().StreamLengthAsync(_key).WaitAsync(cancellationToken).ConfigureAwait(false) : null;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }

    public async Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken)
    {
        if (_connection is null || events.Count == 0)
        {
            return 0;
        }
        var multiplexer = await _connection.GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!multiplexer.IsConnected)
        {
            return 0;
        }
        var database = multiplexer.GetDatabase();
        // Every XADD is sent before the first answer is awaited.
        var appends = new Task<RedisValue>[(events.Count + _eventsPerEntry - 1) / _eventsPerEntry];
        for (var entry = 0; entry < appends.Length; entry++)
        {
            var start = entry * _eventsPerEntry;
            var fields = new NameValueEntry[2 * Math.Min(_eventsPerEntry, events.Count - start)];
            for (var i = 0; i < fields.Length / 2; i++)
            {
                var eventBytes = events[start + i];
                fields[2 * i] = new NameValueEntry(AuditStream.EventField, eventBytes);
                fields[2 * i + 1] = new NameValueEntry(AuditStream.MacField, macKey.Compute(eventBytes));
            }
            appends[entry] = database.StreamAddAsync(_key, fields);
        }
        // With a backlog cap, the length rides in the same round trip, after the appends.
        var length = _measure ? database.StreamLengthAsync(_key) : null;
        Interlocked.Exchange(ref _length, -1);
        // An entry is appended whole or not at all, and entries land in order: the result is a prefix.
        var appended = 0;
        foreach (var append in appends)
        {
            try
            {
                await append.WaitAsync(cancellationToken).ConfigureAwait(false);
                appended = Math.Min(events.Count, appended + _eventsPerEntry);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException)
            {
                break;
            }
        }
        // Observe the answers after a failure, so none is left unobserved.
        if (appended < events.Count)
        {
            _ = Task.WhenAll(appends).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            _ = length?.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
        else if (length is not null)
        {
            try
            {
                Interlocked.Exchange(ref _length, await length.WaitAsync(cancellationToken).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException)
            {
                // Appended, length unknown: the recorder keeps its last reading.
            }
        }
        return appended;
    }
}
