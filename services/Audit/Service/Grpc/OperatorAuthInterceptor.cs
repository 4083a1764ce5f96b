using SecretsBroker.Audit.Contracts;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary>
/// Lets an AuditLog call through only with <c>authorization: Bearer TOKEN</c> where SHA-256(TOKEN) is one of
/// the configured operator token hashes. Every hash is compared in constant time, so the time taken does
/// not tell which one matched or how much of one did.
/// </summary>
public sealed partial class OperatorAuthInterceptor(IOptions<OperatorAuthOptions> options, ILogger<OperatorAuthInterceptor> logger) : Interceptor
{
    private readonly byte[][] _hashes = options.Value.Tokens.Select(t => Convert.FromHexString(t.Sha256)).ToArray();
    private readonly string[] _names = options.Value.Tokens.Select(t => t.Name).ToArray();

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(request, responseStream, context);
    }

    private void Authenticate(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        if (string.IsNullOrEmpty(header))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "an operator token is required: authorization: Bearer <token>"));
        }
        if (!BearerTokens.TryParse(header, out var token) || token.IsEmpty)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "the authorization header must be 'Bearer <token>'"));
        }
        var match = BearerTokens.Match(token, _hashes);
        if (match < 0)
        {
            LogRefused(logger, context.Method, context.Peer);
            throw new RpcException(new Status(StatusCode.Unauthenticated, "the operator token is not valid"));
        }
        LogOperatorCall(logger, _names[match], context.Method);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Method} from {Peer}: invalid operator token")]
    private static partial void LogRefused(ILogger logger, string method, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Operator {Operator} called {Method}")]
    private static partial void LogOperatorCall(ILogger logger, string @operator, string method);
}
