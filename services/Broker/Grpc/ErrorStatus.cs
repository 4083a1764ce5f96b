using Grpc.Core;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>The one place a broker error kind becomes a gRPC status (the contract is in docs/status-codes.md).</summary>
public static class ErrorStatus
{
    public static StatusCode ToStatusCode(BrokerErrorKind kind) => kind switch
    {
        BrokerErrorKind.Cancelled => StatusCode.Cancelled,
        BrokerErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        BrokerErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        BrokerErrorKind.NotFound => StatusCode.NotFound,
        BrokerErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        BrokerErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        BrokerErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        BrokerErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        BrokerErrorKind.Aborted => StatusCode.Aborted,
        BrokerErrorKind.Unavailable => StatusCode.Unavailable,
        BrokerErrorKind.Unauthenticated => StatusCode.Unauthenticated,
        _ => StatusCode.Internal,
    };
}
