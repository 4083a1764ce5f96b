using System.ComponentModel.DataAnnotations;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Policy;

/// <summary>Per-caller token buckets (<c>Broker:RateLimits</c>); each call takes one token.</summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "Broker:RateLimits";

    /// <summary>False turns rate limiting off.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Bucket size: the burst one caller may make at once.</summary>
    [Range(1, 1_000_000)]
    public int TokenLimit { get; set; } = 1000;

    /// <summary>Tokens added back each period.</summary>
    [Range(1, 1_000_000)]
    public int TokensPerPeriod { get; set; } = 500;

    /// <summary>The refill period.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan ReplenishmentPeriod { get; set; } = TimeSpan.FromSeconds(1);
}

[OptionsValidator]
public sealed partial class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>;

public sealed class CallerRateLimiter(IOptions<RateLimitOptions> options) : IDisposable
{
    private readonly RateLimitOptions _options = options.Value;
    // Partitioned by (auth method, subject) as a value tuple: no key string to build on every call.
    private readonly PartitionedRateLimiter<(string, string)> _limiter = PartitionedRateLimiter.Create<(string, string), (string, string)>(caller =>
        RateLimitPartition.GetTokenBucketLimiter(caller, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Value.TokenLimit,
            TokensPerPeriod = options.Value.TokensPerPeriod,
            ReplenishmentPeriod = options.Value.ReplenishmentPeriod,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    /// <summary>Takes a token for the caller; returns how long to wait when none is left, else null.</summary>
    public TimeSpan? TryAcquire(CallerIdentity identity)
    {
        if (!_options.Enabled)
        {
            return null;
        }
        using var lease = _limiter.AttemptAcquire((identity.AuthMethod, identity.Subject));
        if (lease.IsAcquired)
        {
            return null;
        }
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : _options.ReplenishmentPeriod;
    }

    public void Dispose() => _limiter.Dispose();
}
