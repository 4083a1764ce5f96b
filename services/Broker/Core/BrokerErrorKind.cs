namespace SecretsBroker.Broker.Core;

/// <summary>
/// Why a broker operation did not succeed, independent of any transport. The numbers are the canonical
/// codes of google.rpc.Code, so an audit record or a metric carries the same code whichever API surface
/// answered; Grpc/ is the only place that turns a kind into a transport status.
/// </summary>
public enum BrokerErrorKind
{
    Cancelled = 1,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

public static class BrokerErrorKinds
{
    /// <summary>The canonical upper-case name (NOT_FOUND), as audit records, metrics and clients spell it.</summary>
    public static string Name(this BrokerErrorKind kind) => kind switch
    {
        BrokerErrorKind.Cancelled => "CANCELLED",
        BrokerErrorKind.InvalidArgument => "INVALID_ARGUMENT",
        BrokerErrorKind.DeadlineExceeded => "DEADLINE_EXCEEDED",
        BrokerErrorKind.NotFound => "NOT_FOUND",
        BrokerErrorKind.AlreadyExists => "ALREADY_EXISTS",
        BrokerErrorKind.PermissionDenied => "PERMISSION_DENIED",
        BrokerErrorKind.ResourceExhausted => "RESOURCE_EXHAUSTED",
        BrokerErrorKind.FailedPrecondition => "FAILED_PRECONDITION",
        BrokerErrorKind.Aborted => "ABORTED",
        BrokerErrorKind.Internal => "INTERNAL",
        BrokerErrorKind.Unavailable => "UNAVAILABLE",
        BrokerErrorKind.Unauthenticated => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    };

    /// <summary>Failures that say the backend or a dependency could not answer (as opposed to answers such as NOT_FOUND).</summary>
    public static bool IsTransient(this BrokerErrorKind kind) =>
        kind is BrokerErrorKind.Unavailable or BrokerErrorKind.DeadlineExceeded or BrokerErrorKind.ResourceExhausted;

    /// <summary>Refusals of the caller (audited as deny); every other kind is audited as an error.</summary>
    public static bool IsDenial(this BrokerErrorKind kind) =>
        kind is BrokerErrorKind.PermissionDenied or BrokerErrorKind.Unauthenticated or BrokerErrorKind.ResourceExhausted;
}
