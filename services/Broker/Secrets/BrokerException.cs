using System.Diagnostics.CodeAnalysis;
using Grpc.Core;

namespace SecretsBroker.Broker.Secrets;

/// <summary>
/// A failure with a gRPC status the caller should see. Messages are shown to callers, so they must
/// never contain a secret value, a token or a logical path.
/// </summary>
public sealed class BrokerException(StatusCode statusCode, string message, Exception? innerException = null)
    : Exception(message, innerException)
{
    public StatusCode StatusCode { get; } = statusCode;

    [DoesNotReturn]
    public static void ThrowInvalidArgument(string message) => throw new BrokerException(StatusCode.InvalidArgument, message);

    [DoesNotReturn]
    public static void ThrowNotFound(string message) => throw new BrokerException(StatusCode.NotFound, message);

    [DoesNotReturn]
    public static void ThrowFailedPrecondition(string message) => throw new BrokerException(StatusCode.FailedPrecondition, message);

    [DoesNotReturn]
    public static void ThrowUnavailable(string message, Exception? innerException = null) =>
        throw new BrokerException(StatusCode.Unavailable, message, innerException);
}
