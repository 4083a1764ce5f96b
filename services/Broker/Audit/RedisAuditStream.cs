using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// Appends audit events to the Redis stream with pipelined XADDs over the broker's one Redis connection.
/// Without a configured Redis there is no stream and events stay in the spool.
/// </summary>
public sealed class RedisAuditStream(IServiceProvider services, IOptions<AuditOptions> options) : IAuditStream
{
    private readonly RedisConnection? _connection = services.GetService<RedisConnection>();
    private readonly RedisKey _key = options.Value.StreamKey;

    public bool IsConfigured => _connection is not null;

    public async Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return 0;
        }
        var multiplexer = await _connection.GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!multiplexer.IsConnected)
        {
            return 0;
        }
        var database = multiplexer.GetDatabase();
        // One round trip for the group: every XADD is sent before the first answer is awaited.
        var appends = new Task<RedisValue>[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            appends[i] = database.StreamAddAsync(_key, AuditStream.EventField, events[i]);
        }
        var appended = 0;
        foreach (var append in appends)
        {
            try
            {
                await append.WaitAsync(cancellationToken).ConfigureAwait(false);
                appended++;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException)
            {
                break;
            }
        }
        // Observe the answers after a failure, so none is left unobserved.
        _ = Task.WhenAll(appends).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        return appended;
    }
}
