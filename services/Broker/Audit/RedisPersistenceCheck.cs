using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Audit;

/// <summary>What a Redis promises about an event once its XADD was acknowledged (issue 17, item 11).</summary>
public enum RedisPersistence
{
    /// <summary>Not checked yet, or CONFIG GET is refused or renamed (managed Redis): nothing is known.</summary>
    Unknown = -1,

    /// <summary><c>appendonly no</c>: a restart of redis-server loses every event not yet read by the audit service.</summary>
    None = 0,

    /// <summary><c>appendonly yes</c> with <c>appendfsync everysec</c>: a crash loses up to about one second of events.</summary>
    EverySecond = 1,

    /// <summary><c>appendonly yes</c> with <c>appendfsync always</c>: an acknowledged event is on disk.</summary>
    Always = 2,
}

/// <summary>
/// In strict mode a secret is served once its event is acknowledged by Redis, which is only as durable as Redis's
/// append-only file: with no persistence, killing redis-server lost 12 of 26,817 events in the security review. This
/// reads <c>CONFIG GET appendonly</c> / <c>appendfsync</c> at start and after every reconnect (Redis may have been
/// replaced by one configured otherwise), exports the state as <c>secretsbroker_audit_redis_persistence</c>, names it in
/// readiness and warns once per change when acknowledged events are not guaranteed to survive a crash.
/// </summary>
public sealed partial class RedisPersistenceCheck(IServiceProvider services, IOptions<AuditOptions> options, AuditMetrics metrics,
    ILogger<RedisPersistenceCheck> logger) : IHostedService
{
    private readonly RedisConnection? _connection = services.GetService<RedisConnection>();
    private int _state = (int)RedisPersistence.Unknown;
    private int _checks;

    /// <summary>The last state read from Redis.</summary>
    public RedisPersistence State => (RedisPersistence)Volatile.Read(ref _state);

    /// <summary>Whether the check applies: strict audit over a Redis stream.</summary>
    public bool Applies => _connection is not null && options.Value.Strict;

    /// <summary>How many times Redis was asked (for tests waiting on a re-check).</summary>
    public int Checks => Volatile.Read(ref _checks);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Applies)
        {
            return;
        }
        metrics.ObserveRedisPersistence(() => (int)State);
        var multiplexer = await _connection!.GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        multiplexer.ConnectionRestored += (_, _) => _ = CheckAsync(multiplexer);
        if (multiplexer.IsConnected)
        {
            await CheckAsync(multiplexer).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>What readiness says about the state, or null when nothing needs saying.</summary>
    public string? ReadinessDetail() => !Applies ? null : State switch
    {
        RedisPersistence.Always => null,
        RedisPersistence.EverySecond => "Redis persistence is appendfsync everysec: a Redis crash can lose up to 1 s of acknowledged audit events",
        RedisPersistence.None => "Redis has no append-only file (appendonly no): a Redis restart loses acknowledged audit events not yet stored by the audit service",
        _ => "Redis persistence is unknown (CONFIG GET refused): acknowledged audit events may not survive a Redis crash",
    };

    internal async Task CheckAsync(IConnectionMultiplexer multiplexer)
    {
        var state = RedisPersistence.Unknown;
        try
        {
            var database = multiplexer.GetDatabase();
            var appendOnly = await ConfigGetAsync(database, "appendonly").ConfigureAwait(false);
            var fsync = await ConfigGetAsync(database, "appendfsync").ConfigureAwait(false);
            state = appendOnly switch
            {
                "no" => RedisPersistence.None,
                "yes" when fsync == "always" => RedisPersistence.Always,
                "yes" when fsync == "everysec" => RedisPersistence.EverySecond,
                "yes" => RedisPersistence.None, // appendfsync no: the OS flushes when it likes
                _ => RedisPersistence.Unknown,
            };
        }
        catch (Exception ex) when (ex is RedisException or RedisCommandException or TimeoutException)
        {
            // CONFIG disabled or renamed, or Redis went away again: unknown, re-checked on the next reconnect.
        }
        Interlocked.Increment(ref _checks);
        var previous = (RedisPersistence)Interlocked.Exchange(ref _state, (int)state);
        if (previous != state && ReadinessDetail() is { } detail)
        {
            LogNotGuaranteed(logger, detail);
        }
    }

    private static async Task<string?> ConfigGetAsync(IDatabase database, string parameter)
    {
        // CONFIG GET answers a flat [name, value] array (https://redis.io/docs/latest/commands/config-get/).
        var reply = await database.ExecuteAsync("CONFIG", "GET", parameter).ConfigureAwait(false);
        var values = (RedisResult[]?)reply;
        return values is { Length: >= 2 } ? values[1].ToString().ToLowerInvariant() : null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Strict audit: {Detail}. Set appendonly yes and appendfsync always on the broker's Redis (docs/audit.md)")]
    private static partial void LogNotGuaranteed(ILogger logger, string detail);
}
