using System.Net;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// A failed Secrets Manager call. <see cref="ErrorCode"/> is AWS's error type (for example
/// <c>ResourceNotFoundException</c>), or <c>Timeout</c> / <c>Transport</c> when no answer came back.
/// The message holds only the operation, the type and the HTTP status: AWS's own message is dropped
/// because it can quote the secret id.
/// </summary>
public sealed class SecretsManagerException(string operation, string errorCode, HttpStatusCode? httpStatus, Exception? innerException = null)
    : Exception($"Secrets Manager {operation} failed: {errorCode}{(httpStatus is { } s ? $" (HTTP {(int)s})" : "")}", innerException)
{
    public string Operation { get; } = operation;

    public string ErrorCode { get; } = errorCode;

    public HttpStatusCode? HttpStatus { get; } = httpStatus;
}

/// <summary>Maps Secrets Manager error types to the broker's gRPC statuses (DESIGN.md), with messages that name no secret.</summary>
public static class SecretsManagerErrors
{
    /// <summary>Error types that mean "slow down" (botocore's list, see <see cref="SecretsManagerRetryRules"/>); retried with backoff, then RESOURCE_EXHAUSTED.</summary>
    public static bool IsThrottling(string? errorCode) => SecretsManagerRetryRules.IsThrottlingCode(errorCode);

    /// <summary>Normalizes <c>__type</c> values like <c>com.amazonaws.secretsmanager#ResourceNotFoundException</c> or <c>X:http://...</c>.</summary>
    public static string? NormalizeErrorType(string? type)
    {
        if (string.IsNullOrWhiteSpace(type))
        {
            return null;
        }
        var value = type;
        var hash = value.LastIndexOf('#');
        if (hash >= 0)
        {
            value = value[(hash + 1)..];
        }
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            value = value[..colon];
        }
        value = value.Trim();
        // Keep only an identifier: this text ends up in log lines and status messages.
        return value.Length is > 0 and <= 64 && value.All(char.IsAsciiLetterOrDigit) ? value : "UnrecognizedError";
    }

    public static BrokerException ToBrokerException(SecretsManagerException exception)
    {
        var code = exception.ErrorCode;
        var (status, message) = code switch
        {
            "ResourceNotFoundException" => (BrokerErrorKind.NotFound, "secret or version not found in AWS Secrets Manager"),
            "AccessDeniedException" or "AccessDenied" =>
                (BrokerErrorKind.PermissionDenied, "AWS Secrets Manager denied the broker access to this secret"),
            "InvalidParameterException" or "ValidationException" or "InvalidParameterValue" or "SerializationException" =>
                (BrokerErrorKind.InvalidArgument, $"AWS Secrets Manager rejected a parameter of the request ({code})"),
            "InvalidRequestException" =>
                (BrokerErrorKind.FailedPrecondition, "AWS Secrets Manager cannot serve this secret in its current state (InvalidRequestException; for example it is scheduled for deletion)"),
            "DecryptionFailure" => (BrokerErrorKind.FailedPrecondition, "AWS Secrets Manager could not decrypt this secret with its KMS key (DecryptionFailure)"),
            "EncryptionFailure" => (BrokerErrorKind.FailedPrecondition, "AWS Secrets Manager could not encrypt the value with its KMS key (EncryptionFailure)"),
            "ResourceExistsException" => (BrokerErrorKind.AlreadyExists, "a secret or version with this name already exists in AWS Secrets Manager"),
            "PreconditionNotMetException" or "MalformedPolicyDocumentException" =>
                (BrokerErrorKind.FailedPrecondition, $"AWS Secrets Manager refused the request ({code})"),
            "LimitExceededException" => (BrokerErrorKind.ResourceExhausted, "an AWS Secrets Manager quota was exceeded (LimitExceededException)"),
            _ when IsThrottling(code) => (BrokerErrorKind.ResourceExhausted, "AWS Secrets Manager kept throttling the broker; retry later"),
            "UnrecognizedClientException" or "InvalidSignatureException" or "IncompleteSignature" or "ExpiredTokenException"
                or "InvalidClientTokenId" or "MissingAuthenticationToken" or "SignatureDoesNotMatch" =>
                (BrokerErrorKind.Unavailable, $"AWS rejected the broker's credentials ({code}); check the mount's credential configuration"),
            _ when SecretsManagerRetryRules.IsTransientCode(code) => (BrokerErrorKind.Unavailable, $"AWS Secrets Manager did not complete the request in time ({code}); retry later"),
            "Timeout" => (BrokerErrorKind.Unavailable, "AWS Secrets Manager did not answer in time"),
            "Transport" => (BrokerErrorKind.Unavailable, "AWS Secrets Manager could not be reached"),
            "InternalServiceError" or "InternalFailure" or "ServiceUnavailable" =>
                (BrokerErrorKind.Unavailable, $"AWS Secrets Manager is failing ({code}); retry later"),
            _ when exception.HttpStatus is { } http && (int)http >= 500 =>
                (BrokerErrorKind.Unavailable, $"AWS Secrets Manager is failing (HTTP {(int)http}); retry later"),
            "MalformedResponse" => (BrokerErrorKind.Unavailable, "AWS Secrets Manager answered with a response the broker could not read"),
            "UnrecognizedError" when exception.HttpStatus == HttpStatusCode.TooManyRequests =>
                (BrokerErrorKind.ResourceExhausted, "the Secrets Manager endpoint answered HTTP 429 (too many requests); retry later"),
            "UnrecognizedError" => (BrokerErrorKind.Unavailable,
                $"the Secrets Manager endpoint answered HTTP {(int?)exception.HttpStatus ?? 0} without an AWS error type; check the mount's ServiceUrl"),
            _ => (BrokerErrorKind.FailedPrecondition, $"AWS Secrets Manager refused the request ({code})"),
        };
        return new BrokerException(status, message, exception);
    }
}
