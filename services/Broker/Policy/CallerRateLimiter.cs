using System.ComponentModel.DataAnnotations;
using System.Collections.Concurrent;
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

/// <summary>
/// A token bucket per caller (auth method, subject): a burst of <see cref="RateLimitOptions.TokenLimit"/>, then
/// <see cref="RateLimitOptions.TokensPerPeriod"/> back at the end of each whole period, as
/// System.Threading.RateLimiting's TokenBucketRateLimiter with AutoReplenishment does.
/// </summary>
/// <remarks>
/// The buckets are kept here rather than in a PartitionedRateLimiter because those limiters read Stopwatch, not the
/// broker's <see cref="TimeProvider"/> (TokenBucketRateLimiter.Replenish in dotnet/runtime), so neither the refill
/// nor the dropping of idle partitions could be tested deterministically. Memory follows the callers active in the
/// last periods: every period a sweep drops the buckets that are full again, which answer exactly as a new bucket
/// would; 10,000 callers seen once leave nothing behind a period later.
/// </remarks>
public sealed class CallerRateLimiter : IDisposable
{
    private readonly RateLimitOptions _options;
    private readonly TimeProvider _time;
    private readonly long _periodTicks;
    private readonly ConcurrentDictionary<(string, string), Bucket> _buckets = new();
    private readonly ITimer? _sweep;
    private long _rejections;

    public CallerRateLimiter(IOptions<RateLimitOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        // Timestamps in the clock's own frequency, so a period is a whole number of them.
        _periodTicks = (long)(_options.ReplenishmentPeriod.TotalSeconds * time.TimestampFrequency);
        if (_options.Enabled)
        {
            _sweep = time.CreateTimer(static state => ((CallerRateLimiter)state!).Sweep(), this, _options.ReplenishmentPeriod, _options.ReplenishmentPeriod);
        }
    }

    /// <summary>Calls refused since start.</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

    /// <summary>Callers with a bucket now (tests, sizing).</summary>
    public int Partitions => _buckets.Count;

    /// <summary>Takes a token for the caller; returns how long to wait when none is left, else null.</summary>
    public TimeSpan? TryAcquire(CallerIdentity identity)
    {
        if (!_options.Enabled)
        {
            return null;
        }
        // Partitioned by (auth method, subject) as a value tuple: no key string to build on every call.
        var key = (identity.AuthMethod, identity.Subject);
        while (true)
        {
            var bucket = _buckets.GetOrAdd(key, static (_, limiter) => new Bucket(limiter._options.TokenLimit, limiter._time.GetTimestamp()), this);
            var wait = bucket.TryTake(this);
            if (wait is { } ticks && ticks < 0)
            {
                continue; // the sweep dropped this bucket meanwhile; its successor starts full, as this one was
            }
            if (wait is null)
            {
                return null;
            }
            Interlocked.Increment(ref _rejections);
            return TimeSpan.FromSeconds((double)wait.Value / _time.TimestampFrequency);
        }
    }

    private void Sweep()
    {
        var now = _time.GetTimestamp();
        foreach (var (key, bucket) in _buckets)
        {
            if (bucket.DropIfFull(this, now))
            {
                _buckets.TryRemove(new KeyValuePair<(string, string), Bucket>(key, bucket));
            }
        }
    }

    public void Dispose() => _sweep?.Dispose();

    private sealed class Bucket(int tokens, long refilledAt)
    {
        private readonly Lock _gate = new();
        private int _tokens = tokens;
        private long _refilledAt = refilledAt;
        private bool _dropped;

        /// <summary>Null when a token was taken; else the clock ticks until the next refill, or -1 when the bucket was dropped.</summary>
        public long? TryTake(CallerRateLimiter limiter)
        {
            lock (_gate)
            {
                if (_dropped)
                {
                    return -1;
                }
                var now = limiter._time.GetTimestamp();
                Refill(limiter, now);
                if (_tokens > 0)
                {
                    _tokens--;
                    return null;
                }
                return _refilledAt + limiter._periodTicks - now;
            }
        }

        public bool DropIfFull(CallerRateLimiter limiter, long now)
        {
            lock (_gate)
            {
                Refill(limiter, now);
                _dropped = _tokens >= limiter._options.TokenLimit;
                return _dropped;
            }
        }

        private void Refill(CallerRateLimiter limiter, long now)
        {
            var periods = (now - _refilledAt) / limiter._periodTicks;
            if (periods <= 0)
            {
                return;
            }
            _tokens = (int)Math.Min(limiter._options.TokenLimit, _tokens + (periods * limiter._options.TokensPerPeriod));
            _refilledAt += periods * limiter._periodTicks;
        }
    }
}
