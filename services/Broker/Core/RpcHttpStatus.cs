namespace SecretsBroker.Broker.Core;

/// <summary>
/// gRPC's mapping between status codes (google.rpc.Code numbers, as <see cref="BrokerErrorKind"/>) and HTTP statuses for
/// HTTP/JSON callers, as google/rpc/code.proto states it per code and gRPC JSON transcoding applies it to its own errors
/// (Grpc.Shared JsonRequestHelpers.MapStatusCodeToHttpStatus).
/// </summary>
public static class RpcHttpStatus
{
    public static int ToHttp(int code) => code switch
    {
        0 => StatusCodes.Status200OK,
        1 => 499,
        3 or 9 or 11 => StatusCodes.Status400BadRequest,      // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
        4 => StatusCodes.Status504GatewayTimeout,
        5 => StatusCodes.Status404NotFound,
        6 or 10 => StatusCodes.Status409Conflict,              // ALREADY_EXISTS, ABORTED
        7 => StatusCodes.Status403Forbidden,
        8 => StatusCodes.Status429TooManyRequests,
        12 => StatusCodes.Status501NotImplemented,
        14 => StatusCodes.Status503ServiceUnavailable,
        16 => StatusCodes.Status401Unauthorized,
        _ => StatusCodes.Status500InternalServerError,         // UNKNOWN, INTERNAL, DATA_LOSS
    };

    /// <summary>
    /// The code an HTTP/JSON answer most likely carried, for metrics of transcoded calls (whose answers have no grpc-status): the
    /// inverse of <see cref="ToHttp"/>, taking the first code where several share a status (400 INVALID_ARGUMENT, 409
    /// ALREADY_EXISTS, 500 INTERNAL).
    /// </summary>
    public static int FromHttp(int status) => status switch
    {
        >= 200 and < 300 => 0,
        499 => 1,
        StatusCodes.Status400BadRequest => 3,
        StatusCodes.Status504GatewayTimeout => 4,
        StatusCodes.Status404NotFound => 5,
        StatusCodes.Status409Conflict => 6,
        StatusCodes.Status403Forbidden => 7,
        StatusCodes.Status429TooManyRequests => 8,
        StatusCodes.Status501NotImplemented => 12,
        StatusCodes.Status503ServiceUnavailable => 14,
        StatusCodes.Status401Unauthorized => 16,
        _ => 13,
    };
}
