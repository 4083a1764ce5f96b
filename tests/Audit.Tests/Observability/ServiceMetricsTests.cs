using SecretsBroker.Audit.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Observability;

/// <summary>What the audit service process serves on /metrics besides its own meter (issue 18, metrics hygiene).</summary>
[Trait("Category", "Integration")]
public sealed class ServiceMetricsTests : RedisAndStoreTest
{
    [Fact]
    public async Task The_metrics_carry_the_service_name_and_the_dotnet_runtime_metrics()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);

        var metrics = await service.MetricsAsync();

        // The resource (target_info) names the service as the broker names itself, never OpenTelemetry's fallback.
        Assert.DoesNotContain("unknown_service", metrics);
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("target_info{", StringComparison.Ordinal)
            && line.Contains("service_name=\"secretsbroker-audit\"", StringComparison.Ordinal));
        // The runtime instrumentation: garbage collections, heap and thread pool, as the broker exports them.
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("dotnet_gc_", StringComparison.Ordinal));
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("dotnet_thread_pool_", StringComparison.Ordinal));
    }
}
