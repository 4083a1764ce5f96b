using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Tls;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Redis;

/// <summary>
/// The one Redis connection of a broker, shared by the L2 cache, the backplane and the audit stream. It
/// never blocks a read: commands fail fast while Redis is unreachable (the cache goes on without Redis,
/// audit events go to the spool), and the multiplexer reconnects by itself.
/// </summary>
public sealed partial class RedisConnection(IOptions<RedisOptions> options, IHostEnvironment environment, ILogger<RedisConnection> logger) : IAsyncDisposable
{
    private readonly Lazy<Task<IConnectionMultiplexer>> _connection = new(() => ConnectAsync(options.Value, LoadCaValidator(options.Value, environment), logger));

    public Task<IConnectionMultiplexer> GetAsync() => _connection.Value;

    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated)
        {
            await (await _connection.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The validator of <see cref="RedisOptions.CaCertificateFile"/>, or null to use the machine's trust store.</summary>
    public static CustomCaValidator? LoadCaValidator(RedisOptions options, IHostEnvironment environment) =>
        string.IsNullOrWhiteSpace(options.CaCertificateFile)
            ? null
            : CustomCaValidator.FromPemFile(Path.Combine(environment.ContentRootPath, options.CaCertificateFile), $"{RedisOptions.SectionName}:CaCertificateFile");

    private static async Task<IConnectionMultiplexer> ConnectAsync(RedisOptions options, CustomCaValidator? caValidator, ILogger logger)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration!);
        if (caValidator is not null)
        {
            configuration.CertificateValidation += caValidator.ValidateServerCertificate;
        }
        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ConnectTimeout = 2000;
        configuration.AsyncTimeout = (int)options.Timeout.TotalMilliseconds;
        configuration.SyncTimeout = (int)options.Timeout.TotalMilliseconds;
        configuration.ReconnectRetryPolicy = new LinearRetry(500);
        configuration.ClientName ??= "secretsbroker";
        // StackExchange.Redis gates CONFIG behind this client-side switch; strict audit reads CONFIG GET appendonly/appendfsync
        // (Audit/RedisPersistenceCheck). What the broker may run is still up to the server's ACL.
        configuration.AllowAdmin = true;
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false);
        multiplexer.ConnectionFailed += (_, e) => LogConnectionFailed(logger, e.FailureType.ToString());
        multiplexer.ConnectionRestored += (_, _) => LogConnectionRestored(logger);
        if (!multiplexer.IsConnected)
        {
            LogStartedWithoutRedis(logger);
        }
        return multiplexer;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis connection lost ({FailureType}); reads go on from L1 and the backends while it reconnects")]
    private static partial void LogConnectionFailed(ILogger logger, string failureType);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis connection restored; the shared cache is used again")]
    private static partial void LogConnectionRestored(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis is not reachable at start; the broker serves from L1 and the backends and keeps trying to connect")]
    private static partial void LogStartedWithoutRedis(ILogger logger);
}
