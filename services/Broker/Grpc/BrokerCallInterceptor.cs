using Grpc.Core;
using Grpc.Core.Interceptors;
using Status = Grpc.Core.Status;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
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
public sealed partial class BrokerCallInterceptor(CallerRateLimiter rateLimiter, EdgeRefusals refusals, ILogger<BrokerCallInterceptor> logger) : Interceptor
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
            await continuation(new CheckedRequestStream<TRequest>(requestStream, this, context), responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpcException(ex, context);
        }
    }

    /// <summary>
    /// Admits an authenticated, not rate-limited caller and records the access context for the call; refusals are audited
    /// here, since no service code runs for them. <see cref="GrpcCallGate"/> refuses unauthenticated calls first; the check
    /// here keeps a call that bypassed it from running without a caller.
    /// </summary>
    private async Task EnsureAuthenticatedAsync(ServerCallContext context)
    {
        var httpContext = context.GetHttpContext();
        var caller = CallerIdentity.FromPrincipal(httpContext.User);
        if (caller is null)
        {
            throw new RpcException(await refusals.UnauthenticatedAsync(httpContext, context.CancellationToken).ConfigureAwait(false));
        }
        var access = refusals.Access(httpContext, caller);
        // A request feature rather than HttpContext.Items, which would create the Items dictionary on every call. Set before the
        // rate limit, so GrpcCallGate sees that this call's refusal was audited here.
        httpContext.Features.Set(access);
        if (rateLimiter.TryAcquire(caller) is { } retryAfter)
        {
            // The audited reason leaves out the wait, so repeated refusals can be counted together.
            await refusals.RefusedAsync(access, new AuditEntry(AuditActions.RateLimit), new BrokerException(BrokerErrorKind.ResourceExhausted, CallerLimitReason),
                context.CancellationToken).ConfigureAwait(false);
            throw GrpcAnswers.RateLimited("caller", retryAfter).ToRpcException();
        }
    }

    /// <summary>
    /// A message on a request stream that Grpc.AspNetCore cannot read (broken framing: an INTERNAL RpcException from its
    /// PipeExtensions.ReadStreamMessageAsync; broken protobuf; a bad compressed flag) is the caller's error: INVALID_ARGUMENT,
    /// audited, instead of INTERNAL or UNKNOWN with a stack trace.
    /// </summary>
    private async Task<RpcException> UnreadableAsync(ServerCallContext context, Exception exception)
    {
        var method = BrokerMethods.All.GetValueOrDefault(context.Method);
        var reason = exception switch
        {
            RpcException rpc => $"a request message on the stream cannot be read ({rpc.Status.Detail})",
            _ => $"the request is not a valid {method?.MessageName ?? "message"}",
        };
        await refusals.RefusedAsync(context.GetAccess(), new AuditEntry(method?.AuditAction ?? AuditActions.Renew),
            new BrokerException(BrokerErrorKind.InvalidArgument, reason), context.CancellationToken).ConfigureAwait(false);
        LogUnreadable(context.Method, reason);
        return new RpcException(new Status(StatusCode.InvalidArgument, reason));
    }

    private sealed class CheckedRequestStream<T>(IAsyncStreamReader<T> inner, BrokerCallInterceptor interceptor, ServerCallContext context) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                return await inner.MoveNext(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidDataException
                || ex is RpcException { StatusCode: StatusCode.Internal } && !cancellationToken.IsCancellationRequested)
            {
                throw await interceptor.UnreadableAsync(context, ex).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "A call to {Method} was refused: {Reason}")]
    private partial void LogUnreadable(string method, string reason);

    private const string CallerLimitReason = "rate limit exceeded for this caller";

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
