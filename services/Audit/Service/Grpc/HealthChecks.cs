using Microsoft.Extensions.Diagnostics.HealthChecks;
using SecretsBroker.Audit.Service.Ingestion;
using SecretsBroker.Audit.Service.Store;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary>Ready when the store (SQLite file or PostgreSQL) can be read.</summary>
public sealed class StoreHealthCheck(IAuditStore store) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            store.CanRead();
            return Task.FromResult(HealthCheckResult.Healthy());
        }
        catch (Exception exception) when (exception is Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException or IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("the audit store cannot be read"));
        }
    }
}

/// <summary>Ready when Redis answers and the consumer's last round succeeded.</summary>
public sealed class RedisHealthCheck(IConnectionMultiplexer redis, AuditStreamConsumer consumer) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!redis.IsConnected)
        {
            return HealthCheckResult.Unhealthy("Redis is not connected");
        }
        try
        {
            await redis.GetDatabase().PingAsync().ConfigureAwait(false);
        }
        catch (RedisException)
        {
            return HealthCheckResult.Unhealthy("Redis does not answer");
        }
        return consumer.Healthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("the stream consumer is retrying after a failure");
    }
}
