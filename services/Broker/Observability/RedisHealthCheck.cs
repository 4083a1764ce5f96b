using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// Readiness of Redis (the shared cache, its backplane and the audit stream): connected and
/// answering PING within the probe timeout. The broker reads without Redis (L1 and the backends), so by
/// default a Redis outage only degrades; with <c>Broker:Health:RedisRequired</c> it makes the broker not ready.
/// </summary>
public sealed class RedisHealthCheck(IServiceProvider services, IOptions<BrokerHealthOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (services.GetService<RedisConnection>() is not { } connection)
        {
            return HealthCheckResult.Healthy("Redis is not configured (Broker:Redis:Configuration is empty)");
        }
        var settings = options.Value;
        var failure = settings.RedisRequired ? HealthStatus.Unhealthy : HealthStatus.Degraded;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.ProbeTimeout);
        try
        {
            var multiplexer = await connection.GetAsync().WaitAsync(timeout.Token).ConfigureAwait(false);
            if (!multiplexer.IsConnected)
            {
                return new HealthCheckResult(failure, "Redis is not connected; the broker reconnects by itself");
            }
            var latency = await multiplexer.GetDatabase().PingAsync().WaitAsync(timeout.Token).ConfigureAwait(false);
            return HealthCheckResult.Healthy($"Redis answered PING in {latency.TotalMilliseconds:0.#} ms");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(failure, $"Redis did not answer within {settings.ProbeTimeout.TotalMilliseconds:0} ms");
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException or ObjectDisposedException)
        {
            return new HealthCheckResult(failure, $"Redis is unreachable ({ex.GetType().Name})");
        }
    }
}
