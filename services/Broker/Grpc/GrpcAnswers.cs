using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>gRPC answers written by middleware, before or instead of Grpc.AspNetCore: the one way to build them.</summary>
internal static class GrpcAnswers
{
    /// <summary>
    /// A gRPC answer without a message, as Grpc.AspNetCore writes one: HTTP 200, application/grpc and, since nothing was
    /// sent yet, a Trailers-Only response (gRPC over HTTP/2, "Responses": the status in the one HEADERS frame), with
    /// google.rpc.Status details in grpc-status-details-bin when given. Separate headers and trailers would let a client
    /// see response headers first and take a refused call for an accepted stream.
    /// </summary>
    /// <remarks>
    /// A call to a gRPC JSON transcoding endpoint (HTTP/JSON, docs/http.md) gets the answer transcoding gives its own errors
    /// instead: the HTTP status of gRPC's mapping and a google.rpc.Status JSON body.
    /// </remarks>
    public static Task WriteAsync(HttpContext context, global::Grpc.Core.Status status, Google.Rpc.Status? details = null)
    {
        if (TranscodedCalls.IsTranscoded(context))
        {
            return WriteJsonAsync(context, status, details);
        }
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        Action<string, string> add = response.HasStarted
            ? (name, value) => response.AppendTrailer(name, value)
            : (name, value) => response.Headers.Append(name, value);
        add("grpc-status", ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture));
        add("grpc-message", PercentEncode(status.Detail));
        if (details is not null)
        {
            // Binary metadata is base64; the spec asks senders for the unpadded form.
            add("grpc-status-details-bin", Convert.ToBase64String(details.ToByteArray()).TrimEnd('='));
        }
        return Task.CompletedTask;
    }

    // Any in details is written with its @type, which needs the message types the broker packs.
    private static readonly JsonFormatter StatusJson = new(JsonFormatter.Settings.Default.WithTypeRegistry(TypeRegistry.FromMessages(RetryInfo.Descriptor)));

    /// <summary>google.rpc.Status as JSON with gRPC's HTTP status, as gRPC JSON transcoding writes an error (JsonRequestHelpers.SendErrorResponse).</summary>
    private static Task WriteJsonAsync(HttpContext context, global::Grpc.Core.Status status, Google.Rpc.Status? details)
    {
        var body = details?.Clone() ?? new Google.Rpc.Status();
        body.Code = (int)status.StatusCode;
        body.Message = status.Detail;
        var response = context.Response;
        response.StatusCode = Broker.Core.RpcHttpStatus.ToHttp((int)status.StatusCode);
        response.ContentType = "application/json; charset=utf-8";
        return response.WriteAsync(StatusJson.Format(body), context.RequestAborted);
    }

    /// <summary>RESOURCE_EXHAUSTED with google.rpc.RetryInfo, which gRPC clients and proxies understand.</summary>
    public static Google.Rpc.Status RateLimited(string scope, TimeSpan retryAfter) => new()
    {
        Code = (int)StatusCode.ResourceExhausted,
        Message = $"rate limit exceeded for this {scope}; retry after {Math.Ceiling(retryAfter.TotalMilliseconds):0} ms",
        Details = { Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(retryAfter) }) },
    };

    /// <summary>grpc-message is percent-encoded: every byte outside printable ASCII, and '%'.</summary>
    private static string PercentEncode(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        var encoded = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7E and not (byte)'%')
            {
                encoded.Append((char)b);
            }
            else
            {
                encoded.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return encoded.ToString();
    }
}
