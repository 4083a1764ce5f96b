using System.Net;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Builds the HTTP pipeline of one Secrets Manager client: total timeout -> retry (exponential backoff
/// with jitter, Microsoft.Extensions.Http.Resilience) -> per-attempt timeout -> SigV4 signing -> the
/// socket handler. Retried: ThrottlingException and its kin, HTTP 5xx and 429, attempt timeouts and
/// connection failures. After the last retry the final answer goes back to the client, which maps it
/// to RESOURCE_EXHAUSTED (throttling) or UNAVAILABLE.
/// </summary>
public static class SecretsManagerHttp
{
    public const string SigningService = "secretsmanager";

    /// <summary>Called before each retry with the attempt number and a safe reason (an error type or an HTTP status).</summary>
    public delegate void RetryObserver(int attempt, string reason, TimeSpan delay);

    public static HttpClient CreateClient(AwsSecretsManagerOptions options, string region, IAwsCredentialSource credentials,
        TimeProvider timeProvider, RetryObserver? onRetry = null, HttpMessageHandler? primaryHandler = null)
    {
        primaryHandler ??= new SocketsHttpHandler
        {
            ConnectTimeout = options.AttemptTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = true,
        };
        var signing = new SigV4SigningHandler(credentials, region, SigningService, timeProvider) { InnerHandler = primaryHandler };
        var resilience = new ResilienceHandler(BuildPipeline(options, timeProvider, onRetry)) { InnerHandler = signing };
        return new HttpClient(resilience, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = options.MaxResponseBytes,
        };
    }

    public static ResiliencePipeline<HttpResponseMessage> BuildPipeline(AwsSecretsManagerOptions options, TimeProvider timeProvider, RetryObserver? onRetry)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = timeProvider };
        builder.AddTimeout(options.TotalTimeout);
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = TimeSpan.FromSeconds(20),
                ShouldRetryAfterHeader = false,
                ShouldHandle = static args => ShouldRetryAsync(args.Outcome, args.Context.CancellationToken),
                OnRetry = args =>
                {
                    onRetry?.Invoke(args.AttemptNumber + 1, DescribeOutcome(args.Outcome), args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            });
        }
        builder.AddTimeout(options.AttemptTimeout);
        return builder.Build();
    }

    private static async ValueTask<bool> ShouldRetryAsync(Outcome<HttpResponseMessage> outcome, CancellationToken cancellationToken)
    {
        if (outcome.Exception is not null)
        {
            return outcome.Exception is HttpRequestException or TimeoutRejectedException;
        }
        if (outcome.Result is not { } response)
        {
            return false;
        }
        if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            return true;
        }
        if (response.StatusCode != HttpStatusCode.BadRequest)
        {
            return false;
        }
        await response.Content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return SecretsManagerErrors.IsThrottling(SecretsManagerClient.ReadErrorType(response, body));
    }

    private static string DescribeOutcome(Outcome<HttpResponseMessage> outcome) => outcome switch
    {
        { Exception: TimeoutRejectedException } => "attempt timed out",
        { Exception: { } ex } => ex.GetType().Name,
        { Result: { } response } when response.StatusCode == HttpStatusCode.BadRequest => "throttled",
        { Result: { } response } => $"HTTP {(int)response.StatusCode}",
        _ => "unknown",
    };
}
