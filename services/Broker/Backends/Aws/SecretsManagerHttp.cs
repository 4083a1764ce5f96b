using System.Net;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Builds the HTTP pipeline of one Secrets Manager client: total timeout -> retry (Microsoft.Extensions.Http.Resilience)
/// -> per-attempt timeout -> SigV4 signing -> the socket handler. What is retried, the retry quota and the
/// backoff follow botocore's standard retry mode (see <see cref="SecretsManagerRetryRules"/>). After the
/// last retry the final answer goes back to the client, which maps it to RESOURCE_EXHAUSTED (throttling)
/// or UNAVAILABLE. Every attempt of one call sends the same body, so a write's ClientRequestToken is reused.
/// </summary>
public static class SecretsManagerHttp
{
    public const string SigningService = "secretsmanager";

    /// <summary>botocore's _MAX_BACKOFF: no wait between attempts is longer.</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(20);

    private static readonly ResiliencePropertyKey<int> QuotaTaken = new("aws-sm.retry-quota-taken");
    private static readonly ResiliencePropertyKey<string> RetryReason = new("aws-sm.retry-reason");

    /// <summary>Called before each retry with the attempt number and a safe reason (an error type or an HTTP status).</summary>
    public delegate void RetryObserver(int attempt, string reason, TimeSpan delay);

    public static HttpClient CreateClient(AwsSecretsManagerOptions options, string region, IAwsCredentialSource credentials,
        TimeProvider timeProvider, RetryObserver? onRetry = null, HttpMessageHandler? primaryHandler = null, CustomCaValidator? caValidator = null)
    {
        if (primaryHandler is null)
        {
            var sockets = new SocketsHttpHandler
            {
                ConnectTimeout = options.AttemptTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                AutomaticDecompression = DecompressionMethods.None,
                UseProxy = true,
            };
            primaryHandler = caValidator?.ApplyTo(sockets) ?? sockets;
        }
        var signing = new SigV4SigningHandler(credentials, region, SigningService, timeProvider) { InnerHandler = primaryHandler };
        var resilience = new ResilienceHandler(BuildPipeline(options, timeProvider, onRetry)) { InnerHandler = signing };
        return new HttpClient(resilience, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = options.MaxResponseBytes,
        };
    }

    /// <summary>The pipeline of one client; it owns that client's retry quota.</summary>
    public static ResiliencePipeline<HttpResponseMessage> BuildPipeline(AwsSecretsManagerOptions options, TimeProvider timeProvider, RetryObserver? onRetry)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = timeProvider };
        builder.AddTimeout(options.TotalTimeout);
        if (options.MaxRetries > 0)
        {
            var quota = new SecretsManagerRetryRules.RetryQuota();
            var baseDelay = options.RetryBaseDelay;
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                ShouldRetryAfterHeader = false,
                // botocore's ExponentialBackoff: rand(0, 1) * min(base * 2^(attempt - 1), 20 s) ("full jitter").
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * Math.Min(baseDelay.Ticks * Math.Pow(2, args.AttemptNumber), MaxBackoff.Ticks)))),
                ShouldHandle = args => ShouldRetryAsync(args.Outcome, args.Context, args.AttemptNumber, options.MaxRetries, quota),
                OnRetry = args =>
                {
                    onRetry?.Invoke(args.AttemptNumber + 1, args.Context.Properties.GetValue(RetryReason, "unknown"), args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            });
        }
        builder.AddTimeout(options.AttemptTimeout);
        return builder.Build();
    }

    /// <summary>
    /// botocore's RetryHandler.needs_retry: a retryable answer is retried while attempts remain and the quota
    /// pays for it; a successful answer gives back what the call's last retry took (or 1); other answers are final.
    /// </summary>
    private static async ValueTask<bool> ShouldRetryAsync(Outcome<HttpResponseMessage> outcome, ResilienceContext context, int attempt,
        int maxRetries, SecretsManagerRetryRules.RetryQuota quota)
    {
        if (outcome.Result is { IsSuccessStatusCode: true })
        {
            quota.Release(context.Properties.GetValue(QuotaTaken, SecretsManagerRetryRules.RetryQuota.NoRetryIncrement));
            return false;
        }
        string? errorCode = null;
        if (outcome.Result is { } response)
        {
            await response.Content.LoadIntoBufferAsync(context.CancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(context.CancellationToken).ConfigureAwait(false);
            errorCode = SecretsManagerClient.ReadErrorType(response, body);
        }
        var kind = SecretsManagerRetryRules.Classify(outcome.Result?.StatusCode, errorCode, outcome.Exception, context.CancellationToken.IsCancellationRequested);
        if (kind == RetryKind.None || attempt >= maxRetries)
        {
            return false;
        }
        var cost = kind == RetryKind.Timeout ? SecretsManagerRetryRules.RetryQuota.TimeoutRetryCost : SecretsManagerRetryRules.RetryQuota.RetryCost;
        if (!quota.TryAcquire(cost))
        {
            return false;
        }
        context.Properties.Set(QuotaTaken, cost);
        context.Properties.Set(RetryReason, outcome switch
        {
            { Exception: TimeoutRejectedException } => "attempt timed out",
            { Exception: OperationCanceledException } => "connect timed out",
            { Exception: { } ex } => ex.GetType().Name,
            _ when errorCode is not null && errorCode != "UnrecognizedError" => errorCode,
            { Result: { } failed } => $"HTTP {(int)failed.StatusCode}",
            _ => "unknown",
        });
        return true;
    }
}
