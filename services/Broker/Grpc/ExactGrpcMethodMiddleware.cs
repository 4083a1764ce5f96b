using Grpc.AspNetCore.Server;
using Grpc.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// Serves a gRPC method only under its exact name. Endpoint routing matches literal segments
/// case-insensitively, so <c>/secretsbroker.v1.SecretsBroker/getsecret</c> would reach GetSecret and slip past
/// a proxy's exact-name allowlist. Any other spelling gets the answer Grpc.AspNetCore gives an unknown method
/// (ServerCallHandlerFactory.CreateUnimplementedMethod: HTTP 200, application/grpc, grpc-status 12 and
/// "Method is unimplemented." in the trailers). Runs after routing has chosen the endpoint, before authentication
/// does any work for the call.
/// </summary>
public sealed partial class ExactGrpcMethodMiddleware(RequestDelegate next, ILogger<ExactGrpcMethodMiddleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method;
        // An HTTP/JSON call has its own URL (its google.api.http rule), not the method's name.
        if (method is null || TranscodedCalls.IsTranscoded(context) || IsExactName(context.Request.Path, method.FullName))
        {
            return next(context);
        }
        LogMisspelledMethod(method.FullName);
        return GrpcAnswers.WriteAsync(context, new Status(StatusCode.Unimplemented, "Method is unimplemented."));
    }

    /// <summary>The request path is the method's full name ("/package.Service/Method", Grpc.Core's Method.FullName), ordinally.</summary>
    private static bool IsExactName(PathString path, string fullName) => string.Equals(path.Value, fullName, StringComparison.Ordinal);

    // Only the registered name is logged, never the caller's spelling (attacker-controlled text).
    [LoggerMessage(Level = LogLevel.Debug, Message = "A request for {Method} under another spelling of its name is answered UNIMPLEMENTED")]
    private partial void LogMisspelledMethod(string method);
}
