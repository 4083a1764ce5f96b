using System.Diagnostics.CodeAnalysis;

namespace SecretsBroker.Broker.Core;

/// <summary>
/// A failure the caller should see, with its <see cref="BrokerErrorKind"/>. Messages are shown to callers, so they
/// must never contain a secret value, a token or a logical path.
/// </summary>
public sealed class BrokerException(BrokerErrorKind kind, string message, Exception? innerException = null)
    : Exception(message, innerException)
{
    public BrokerErrorKind Kind { get; } = kind;

    [DoesNotReturn]
    public static void ThrowInvalidArgument(string message) => throw new BrokerException(BrokerErrorKind.InvalidArgument, message);

    [DoesNotReturn]
    public static void ThrowNotFound(string message) => throw new BrokerException(BrokerErrorKind.NotFound, message);

    [DoesNotReturn]
    public static void ThrowPermissionDenied(string message) => throw new BrokerException(BrokerErrorKind.PermissionDenied, message);

    [DoesNotReturn]
    public static void ThrowFailedPrecondition(string message) => throw new BrokerException(BrokerErrorKind.FailedPrecondition, message);

    [DoesNotReturn]
    public static void ThrowUnavailable(string message, Exception? innerException = null) =>
        throw new BrokerException(BrokerErrorKind.Unavailable, message, innerException);
}
