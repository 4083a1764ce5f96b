using System.Diagnostics;
using System.Globalization;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Microsoft.AspNetCore.Http.Features;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// Counts and times every gRPC call on the broker's port (SecretsBroker, health, reflection) by the
/// status actually sent to the client: grpc-status from the trailers, or from the headers of a
/// trailers-only response. Calls to methods the server does not know are labelled <c>unknown</c>, so
/// a caller cannot create label values.
/// </summary>
public sealed class GrpcMetricsMiddleware(RequestDelegate next, BrokerMetrics metrics)
{
    private const string Unknown = "unknown";

    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method;
        if (method is null && context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) != true)
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        Exception? failure = null;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception exception)
        {
            failure = exception;
            throw;
        }
        finally
        {
            // An exception after the client reset the stream (h2load closing its streams, a caller's
            // deadline) is the client going away, not a server fault; so is a failed write on a connection the client
            // closed (ConnectionAbortedException, IOException), which Kestrel can raise before RequestAborted is signalled.
            var status = failure is not null
                ? (context.RequestAborted.IsCancellationRequested || failure is ConnectionAbortedException or IOException ? StatusCode.Cancelled : StatusCode.Internal)
                // An HTTP/JSON call answers with an HTTP status only (docs/http.md).
                : context.GetEndpoint()?.Metadata.GetMetadata<GrpcJsonTranscodingMetadata>() is not null
                    ? (StatusCode)RpcHttpStatus.FromHttp(context.Response.StatusCode)
                : ReadStatus(context);
            metrics.GrpcCallCompleted(method?.ServiceName ?? Unknown, method?.Name ?? Unknown, status, Stopwatch.GetElapsedTime(started));
        }
    }

    private static StatusCode ReadStatus(HttpContext context)
    {
        var value = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers["grpc-status"] is { Count: > 0 } trailer
            ? trailer.ToString()
            : context.Response.Headers["grpc-status"].ToString();
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16)
        {
            return (StatusCode)code;
        }
        // No status written: the client went away (RST_STREAM) before the call finished.
        return context.RequestAborted.IsCancellationRequested ? StatusCode.Cancelled : StatusCode.Unknown;
    }
}
