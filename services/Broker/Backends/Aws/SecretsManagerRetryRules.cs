using System.Net;
using Polly.Timeout;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// botocore's "standard" retry mode (botocore/retries/standard.py), which the other AWS SDKs share:
/// which answers are retried (<see cref="Classify"/>) and the client-wide retry quota
/// (<see cref="RetryQuota"/>). Secrets Manager's service model marks no error shape retryable, so the
/// modeled-retry check adds nothing for this service.
/// </summary>
public static class SecretsManagerRetryRules
{
    /// <summary>ThrottledRetryableChecker._THROTTLED_ERROR_CODES: throttling whatever the HTTP status.</summary>
    private static readonly HashSet<string> ThrottlingCodes = new(StringComparer.Ordinal)
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
        "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
        "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException",
    };

    /// <summary>TransientRetryableChecker._TRANSIENT_ERROR_CODES, whatever the HTTP status.</summary>
    private static readonly HashSet<string> TransientCodes = new(StringComparer.Ordinal)
    {
        "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
    };

    public static bool IsThrottlingCode(string? errorCode) => errorCode is not null && ThrottlingCodes.Contains(errorCode);

    public static bool IsTransientCode(string? errorCode) => errorCode is not null && TransientCodes.Contains(errorCode);

    /// <summary>TransientRetryableChecker._TRANSIENT_STATUS_CODES: 500, 502, 503, 504 (not 501, not 429 by itself).</summary>
    public static bool IsTransientStatus(HttpStatusCode status) =>
        status is HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>
    /// How botocore's standard mode judges one attempt: a throttling code, a transient code or status, or a
    /// connection failure or timeout (ConnectionError, HTTPClientError) is retried; anything else is final.
    /// <paramref name="errorCode"/> is the AWS error type of a failed answer (null when it has none).
    /// </summary>
    public static RetryKind Classify(HttpStatusCode? status, string? errorCode, Exception? exception, bool cancelledByCaller)
    {
        if (exception is not null)
        {
            return exception switch
            {
                TimeoutRejectedException => RetryKind.Timeout,
                // SocketsHttpHandler's ConnectTimeout surfaces as a cancellation the caller did not ask for.
                OperationCanceledException when !cancelledByCaller => RetryKind.Timeout,
                HttpRequestException => RetryKind.Transient,
                _ => RetryKind.None,
            };
        }
        if (IsThrottlingCode(errorCode))
        {
            return RetryKind.Throttling;
        }
        return IsTransientCode(errorCode) || (status is { } s && IsTransientStatus(s)) ? RetryKind.Transient : RetryKind.None;
    }

    /// <summary>
    /// botocore's RetryQuota with RetryQuotaChecker's costs: one bucket per client holding 500; a retry takes 5
    /// (10 after a timeout) and is refused when the bucket cannot pay; a successful call gives back what its
    /// last retry took, or 1 when it needed no retry. It stops retry storms while AWS is failing for everyone.
    /// </summary>
    public sealed class RetryQuota
    {
        public const int InitialCapacity = 500;
        public const int RetryCost = 5;
        public const int TimeoutRetryCost = 10;
        public const int NoRetryIncrement = 1;

        private readonly Lock _lock = new();
        private int _available = InitialCapacity;

        public int Available
        {
            get
            {
                lock (_lock)
                {
                    return _available;
                }
            }
        }

        public bool TryAcquire(int amount)
        {
            lock (_lock)
            {
                if (amount > _available)
                {
                    return false;
                }
                _available -= amount;
                return true;
            }
        }

        public void Release(int amount)
        {
            lock (_lock)
            {
                _available = Math.Min(InitialCapacity, _available + amount);
            }
        }
    }
}

/// <summary>Why an attempt may be retried (botocore: throttled, transient, or a timeout, which costs the quota more).</summary>
public enum RetryKind
{
    None,
    Throttling,
    Transient,
    Timeout,
}
