using SecretsBroker.Audit.Contracts;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Status = Grpc.Core.Status;
using Microsoft.AspNetCore.Authentication;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using System.Diagnostics;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// Runs around every SecretsBroker call: rejects unauthenticated callers with a reason, and turns
/// failures into the status codes of DESIGN.md. Unknown exceptions become INTERNAL with a generic
/// message; their type and stack (never their message, which may quote backend data) are logged.
/// </summary>
public sealed partial class BrokerCallInterceptor(CallerRateLimiter rateLimiter, AccessAuditor auditor, ILogger<BrokerCallInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await EnsureAuthenticatedAsync(context).ConfigureAwait(false);
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpcException(ex, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await EnsureAuthenticatedAsync(context).ConfigureAwait(false);
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpcException(ex, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await EnsureAuthenticatedAsync(context).ConfigureAwait(false);
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpcException(ex, context);
        }
    }

    /// <summary>
    /// Admits an authenticated, not rate-limited caller and records the access context for the call;
    /// refusals are audited here, since no service code runs for them.
    /// </summary>
    private async Task EnsureAuthenticatedAsync(ServerCallContext context)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var httpContext = context.GetHttpContext();
        var caller = CallerIdentity.FromPrincipal(httpContext.User);
        string? bearer = httpContext.Request.Headers.Authorization;
        var access = new AccessContext(caller, httpContext.TraceIdentifier, context.Peer, Activity.Current?.TraceId.ToHexString() ?? "",
            BearerTokens.Parse(bearer) is { IsEmpty: false } token ? auditor.Hmac(token) : "", startedAt);
        if (caller is null)
        {
            // The handler caches its result per request, so this returns the middleware's outcome with its reason.
            var reason = AuthenticationFailures.Describe((await httpContext.AuthenticateAsync().ConfigureAwait(false)).Failure);
            await auditor.RefusedAsync(access, new AuditEntry(AuditActions.Authenticate), new BrokerException(BrokerErrorKind.Unauthenticated, reason),
                context.CancellationToken).ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.Unauthenticated, reason));
        }
        if (rateLimiter.TryAcquire(caller) is { } retryAfter)
        {
            var limited = RateLimited(retryAfter);
            await auditor.RefusedAsync(access, new AuditEntry(AuditActions.RateLimit), new BrokerException(BrokerErrorKind.ResourceExhausted, limited.Status.Detail),
                context.CancellationToken).ConfigureAwait(false);
            throw limited;
        }
        // A request feature rather than HttpContext.Items, which would create the Items dictionary on every call.
        httpContext.Features.Set(access);
    }

    /// <summary>RESOURCE_EXHAUSTED with google.rpc.RetryInfo, which gRPC clients and proxies understand.</summary>
    private static RpcException RateLimited(TimeSpan retryAfter)
    {
        var status = new Google.Rpc.Status
        {
            Code = (int)StatusCode.ResourceExhausted,
            Message = $"rate limit exceeded for this caller; retry after {Math.Ceiling(retryAfter.TotalMilliseconds):0} ms",
            Details = { Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(retryAfter) }) },
        };
        return status.ToRpcException();
    }

    private RpcException ToRpcException(Exception exception, ServerCallContext context)
    {
        switch (exception)
        {
            case BrokerException broker:
                return new RpcException(new Status(ErrorStatus.ToStatusCode(broker.Kind), broker.Message));
            case OperationCanceledException when context.Deadline <= DateTime.UtcNow:
                return new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's deadline passed"));
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled"));
            default:
                LogUnexpected(exception.GetType().FullName, context.Method, exception.StackTrace);
                return new RpcException(new Status(StatusCode.Internal,
                    $"internal broker error; the broker log has the details (trace id {context.GetHttpContext().TraceIdentifier})"));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected {ExceptionType} in {Method}; stack: {StackTrace}")]
    private partial void LogUnexpected(string? exceptionType, string method, string? stackTrace);
}
