using System.Net;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Timeout;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// One <see cref="VaultClient"/> per configured connection, shared by every mount that names it, so a
/// connection logs in once. Each client's HttpClient carries the resilience pipeline (total timeout,
/// retries with exponential backoff and jitter, circuit breaker, per-attempt timeout) and the
/// connection's custom CA, if any.
/// </summary>
public sealed class VaultConnections(IOptions<VaultOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory, VaultMetrics metrics) : IDisposable
{
    /// <summary>Marks a request that mints credentials (database/creds, aws/creds, aws/sts): never repeated once it may have reached Vault.</summary>
    internal static readonly HttpRequestOptionsKey<bool> MintsCredentials = new("SecretsBroker.Vault.MintsCredentials");

    private readonly Dictionary<string, VaultClient> _clients = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>The client for <paramref name="connectionName"/>; throws InvalidOperationException (a configuration error) when it is not configured.</summary>
    public VaultClient Get(string connectionName)
    {
        var all = options.Value; // validated here: a bad Broker:Vault section throws OptionsValidationException
        lock (_lock)
        {
            if (_clients.TryGetValue(connectionName, out var client))
            {
                return client;
            }
            if (!all.Connections.TryGetValue(connectionName, out var connection))
            {
                throw new InvalidOperationException(
                    $"Connection '{connectionName}' is not configured under {VaultOptions.SectionName}:Connections (configured: {string.Join(", ", all.Connections.Keys.Order())})");
            }
            client = new VaultClient(connectionName, connection, CreateHandler(connection, timeProvider), timeProvider, loggerFactory, metrics);
            _clients[connectionName] = client;
            return client;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }
            _clients.Clear();
        }
    }

    internal static HttpMessageHandler CreateHandler(VaultConnectionOptions connection, TimeProvider timeProvider)
    {
        var transport = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = connection.RequestTimeout,
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (connection.CaCertificateFile is { Length: > 0 } caFile)
        {
            // The one CA-file check of every TLS client: the chain is built through the intermediates the server sent up to a
            // root of the file only, as curl, hvac and Vault's Go client do; the host name is still checked.
            CustomCaValidator.FromPemFile(caFile, "Vault connection CaCertificateFile").ApplyTo(transport);
        }
        return new ResilienceHandler(BuildPipeline(connection, timeProvider)) { InnerHandler = transport };
    }

    internal static ResiliencePipeline<HttpResponseMessage> BuildPipeline(VaultConnectionOptions connection, TimeProvider timeProvider)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = timeProvider };
        builder.AddTimeout(new HttpTimeoutStrategyOptions { Timeout = connection.TotalTimeout, Name = "vault-total-timeout" });
        if (connection.MaxRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                Name = "vault-retry",
                MaxRetryAttempts = connection.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = connection.RetryBaseDelay,
                MaxDelay = connection.RetryMaxDelay,
                ShouldRetryAfterHeader = true,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.Context)),
            });
        }
        builder.AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
        {
            Name = "vault-circuit-breaker",
            FailureRatio = connection.CircuitFailureRatio,
            MinimumThroughput = connection.CircuitMinimumThroughput,
            SamplingDuration = connection.CircuitSamplingDuration,
            BreakDuration = connection.CircuitBreakDuration,
            ShouldHandle = args => ValueTask.FromResult(IsServerFailure(args.Outcome)),
        });
        builder.AddTimeout(new HttpTimeoutStrategyOptions { Timeout = connection.RequestTimeout, Name = "vault-attempt-timeout" });
        return builder.Build();
    }

    /// <summary>
    /// Failures before the request was sent (name resolution, connecting, the TLS handshake, a proxy tunnel:
    /// HttpRequestError's connection-phase values) are retried for every request. 429 and 503 mean Vault did
    /// not act on the request (a rate-limit quota, a sealed or standby node), so any request is retried too.
    /// Other 5xx, 408, timeouts and broken connections may have happened after Vault acted: only reads are
    /// retried then. A request that mints credentials is not a read in that sense: repeating a GET of
    /// database/creds/ROLE after Vault may have handled it creates a second user (VaultClient.IssueCredentialsAsync).
    /// </summary>
    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context)
    {
        var request = context.GetRequestMessage();
        var mints = request is not null && request.Options.TryGetValue(MintsCredentials, out var flag) && flag;
        var read = !mints && (request?.Method == HttpMethod.Get || request?.Method == HttpMethod.Head);
        if (outcome.Exception is HttpRequestException
            {
                HttpRequestError: HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError
                or HttpRequestError.ProxyTunnelError,
            })
        {
            return true;
        }
        if (outcome.Exception is HttpRequestException or TimeoutRejectedException)
        {
            return read;
        }
        if (outcome.Result is { } response)
        {
            var status = (int)response.StatusCode;
            return status is 429 or 503 || (read && status is 408 or 500 or 502 or 504);
        }
        return false;
    }

    private static bool IsServerFailure(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TimeoutRejectedException
        || (outcome.Result is { } response && (int)response.StatusCode >= 500);
}
