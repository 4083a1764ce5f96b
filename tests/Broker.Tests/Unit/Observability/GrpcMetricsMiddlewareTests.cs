using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SecretsBroker.Broker.Observability;

namespace SecretsBroker.Broker.Tests.Unit.Observability;

public sealed class GrpcMetricsMiddlewareTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task A_call_the_client_reset_is_counted_as_cancelled_not_internal()
    {
        var (middleware, statuses) = Start(_ => throw new ConnectionAbortedException("The client reset the request stream."));
        using var aborted = new CancellationTokenSource();
        await aborted.CancelAsync();
        var context = GrpcContext(aborted.Token);

        await Assert.ThrowsAsync<ConnectionAbortedException>(() => middleware.InvokeAsync(context));

        Assert.Equal(["CANCELLED"], statuses());
    }

    [Theory]
    [InlineData("connection aborted")]
    [InlineData("io")]
    public async Task A_call_whose_connection_went_away_before_the_request_was_marked_aborted_is_cancelled(string failure)
    {
        // Kestrel can fail the response write (the client closed the connection) before RequestAborted is signalled.
        var (middleware, statuses) = Start(_ => throw (failure == "io"
            ? new IOException("The client closed the connection.")
            : new ConnectionAbortedException("The connection was aborted by the application.")));
        var context = GrpcContext(CancellationToken.None);

        await Assert.ThrowsAnyAsync<Exception>(() => middleware.InvokeAsync(context));

        Assert.Equal(["CANCELLED"], statuses());
    }

    [Fact]
    public async Task A_call_that_failed_while_the_client_was_still_there_is_internal()
    {
        var (middleware, statuses) = Start(_ => throw new InvalidOperationException("broken pipeline"));
        var context = GrpcContext(CancellationToken.None);

        await Assert.ThrowsAsync<InvalidOperationException>(() => middleware.InvokeAsync(context));

        Assert.Equal(["INTERNAL"], statuses());
    }

    private (GrpcMetricsMiddleware Middleware, Func<string[]> Statuses) Start(RequestDelegate next)
    {
        var meters = _services.GetRequiredService<IMeterFactory>();
        var metrics = new BrokerMetrics(meters);
        var requests = new MetricCollector<long>(meters, BrokerMetrics.MeterName, "secretsbroker.grpc.server.requests");
        return (new GrpcMetricsMiddleware(next, metrics),
            () => [.. requests.GetMeasurementSnapshot().Select(m => (string)m.Tags["grpc_status"]!)]);
    }

    private static DefaultHttpContext GrpcContext(CancellationToken aborted)
    {
        var context = new DefaultHttpContext { RequestAborted = aborted };
        context.Request.ContentType = "application/grpc";
        return context;
    }
}
