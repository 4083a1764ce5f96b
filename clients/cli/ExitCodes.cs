using Grpc.Core;

namespace SecretsBroker.Cli;

/// <summary>brokerctl's exit codes, so scripts can tell failures apart without parsing output (README, "brokerctl").</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int NotFound = 3;
    public const int PermissionDenied = 4;
    public const int Unauthenticated = 5;
    public const int Unavailable = 6;
    public const int InvalidRequest = 7;
    public const int PartialBatch = 8;

    /// <summary><c>render</c>: the template does not parse or uses a helper wrongly.</summary>
    public const int TemplateError = 9;
    /// <summary><c>decrypt-file</c>: the file failed authentication (modified, truncated, reordered chunks, wrong key).</summary>
    public const int Tampered = 10;

    /// <summary><c>lease</c>: the lease was lost (revoked, expired or rotated away) and the command was stopped. As timeout(1) uses 124.</summary>
    public const int LeaseLost = 124;

    /// <summary><c>lease</c>: the command exists but could not be started (as the shell's 126).</summary>
    public const int CommandNotExecutable = 126;

    /// <summary><c>lease</c>: the command was not found (as the shell's 127).</summary>
    public const int CommandNotFound = 127;

    public static int For(StatusCode code) => code switch
    {
        StatusCode.OK => Ok,
        StatusCode.NotFound => NotFound,
        StatusCode.PermissionDenied => PermissionDenied,
        StatusCode.Unauthenticated => Unauthenticated,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted => Unavailable,
        StatusCode.InvalidArgument or StatusCode.FailedPrecondition => InvalidRequest,
        _ => Failure,
    };
}
