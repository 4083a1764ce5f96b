using Microsoft.Extensions.Diagnostics.HealthChecks;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// Readiness of the audit trail. In strict mode a read is served only once its event is in the Redis
/// stream or the local spool: with no usable spool and no reachable stream the broker cannot serve,
/// so it is not ready. Events waiting in the spool (Redis unreachable) only degrade: reads go on.
/// </summary>
public sealed class AuditHealthCheck(AuditRecorder recorder, IAuditStream stream, RedisPersistenceCheck persistence, IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["strict"] = recorder.Strict,
            ["spool_usable"] = recorder.SpoolUsable,
            ["spool_depth"] = recorder.SpoolDepth,
        };
        if (recorder.Backlog.Enabled)
        {
            data["backlog_entries"] = recorder.Backlog.Entries;
            data["backlog_capped"] = recorder.Backlog.Capped;
        }
        if (persistence.Applies)
        {
            data["redis_persistence"] = persistence.State.ToString();
        }
        var streamReachable = stream.IsConfigured && services.GetService<RedisConnection>() is { } redis && IsConnected(redis);
        if (!recorder.SpoolUsable)
        {
            var description = streamReachable
                ? "the audit spool could not be opened; events go to the Redis stream only"
                : "the audit spool could not be opened and the Redis stream is unreachable: no audit event can be recorded";
            return Task.FromResult(recorder.Strict && !streamReachable
                ? HealthCheckResult.Unhealthy(description + " (strict mode refuses reads)", data: data)
                : HealthCheckResult.Degraded(description, data: data));
        }
        if (recorder.Backlog.Capped)
        {
            return Task.FromResult(HealthCheckResult.Degraded(
                $"the audit stream's backlog is at its cap ({recorder.Backlog.Entries} of Broker:Audit:MaxBacklogEntries={recorder.Backlog.Max} entries; is the audit service consuming?): "
                + $"{recorder.SpoolDepth} audit events wait in the local spool and are replayed once it drains", data: data));
        }
        if (recorder.SpoolDepth > 0)
        {
            return Task.FromResult(HealthCheckResult.Degraded($"{recorder.SpoolDepth} audit events wait in the spool for the Redis stream", data: data));
        }
        var destination = stream switch
        {
            LocalFileAuditStream local => $"no Redis configured: audit events go to the local file {local.Path} (capped at {local.MaxBytes} bytes)",
            _ when stream.IsConfigured => "audit events go to the Redis stream",
            _ => "no Redis stream configured: audit events stay in the spool",
        };
        // Not degraded: the broker works as configured, but the operator must know what strict mode can promise.
        return Task.FromResult(HealthCheckResult.Healthy(persistence.ReadinessDetail() is { } warning ? $"{destination}; warning: {warning}" : destination, data));
    }

    private static bool IsConnected(RedisConnection redis)
    {
        var connecting = redis.GetAsync();
        return connecting.IsCompletedSuccessfully && connecting.Result.IsConnected;
    }
}
