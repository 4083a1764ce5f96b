using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Timeout;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// One <see cref="VaultClient"/> per configured connection, shared by every mount that names it, so a
/// connection logs in once. Each client's HttpClient carries the resilience pipeline (total timeout,
/// retries with exponential backoff and jitter, circuit breaker, per-attempt timeout) and the
/// connection's custom CA, if any.
/// </summary>
public sealed class VaultConnections(IOptions<VaultOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory) : IDisposable
{
    private static readonly HttpMethod List = new("LIST");
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
            client = new VaultClient(connectionName, connection, CreateHandler(connection, timeProvider), timeProvider, loggerFactory);
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
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(caFile);
            transport.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                ValidateWithCustomAuthorities(certificate, errors, authorities);
        }
        return new ResilienceHandler(BuildPipeline(connection, timeProvider)) { InnerHandler = transport };
    }

    private static bool ValidateWithCustomAuthorities(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection authorities)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false; // a name mismatch or a missing certificate is never excused
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
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
    /// 429 and 503 mean Vault did not act on the request, so any method is retried. Other 5xx, 408 and
    /// transport failures may have happened after Vault acted, so only reads (GET, HEAD, LIST) are retried:
    /// a repeated write could fail its check-and-set or issue a second set of credentials.
    /// </summary>
    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context)
    {
        var method = context.GetRequestMessage()?.Method;
        var safe = method == HttpMethod.Get || method == HttpMethod.Head || method == List;
        if (outcome.Exception is HttpRequestException or TimeoutRejectedException)
        {
            return safe;
        }
        if (outcome.Result is { } response)
        {
            var status = (int)response.StatusCode;
            return status is 429 or 503 || (safe && status is 408 or 500 or 502 or 504);
        }
        return false;
    }

    private static bool IsServerFailure(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TimeoutRejectedException
        || (outcome.Result is { } response && (int)response.StatusCode >= 500);
}
