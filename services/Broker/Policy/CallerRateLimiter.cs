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

    /// <summary>The budget of each source address, spent before authentication (<see cref="SourceRateLimiter"/>).</summary>
    [ValidateObjectMembers]
    public SourceRateLimitOptions Source { get; set; } = new();
}

/// <summary>
/// Per-source token buckets (<c>Broker:RateLimits:Source</c>): every call from an address takes one token before its
/// credential is checked. Larger than a caller's budget, since several callers may share an address.
/// </summary>
public sealed class SourceRateLimitOptions
{
    /// <summary>False turns the per-source limit off (for example behind a proxy, where every call comes from its address).</summary>
    public bool Enabled { get; set; } = true;

    [Range(1, 10_000_000)]
    public int TokenLimit { get; set; } = 4000;

    [Range(1, 10_000_000)]
    public int TokensPerPeriod { get; set; } = 2000;

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan ReplenishmentPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>IPv6 sources share a budget per prefix of this length: one host usually holds a whole /64.</summary>
    [Range(32, 128)]
    public int Ipv6PrefixLength { get; set; } = 64;
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

    private long _rejections;

    /// <summary>Calls refused since start.</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

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
        Interlocked.Increment(ref _rejections);
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : _options.ReplenishmentPeriod;
    }

    public void Dispose() => _limiter.Dispose();
}
