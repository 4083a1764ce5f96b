using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Tests.Unit.Policy;

/// <summary>
/// Per-caller buckets on the broker's clock: the budget, the refill, and the memory: a caller's bucket is dropped
/// once it is full again, so 10,000 callers seen once leave nothing behind.
/// </summary>
public sealed class CallerRateLimiterTests
{
    private static readonly RateLimitOptions Options = new() { TokenLimit = 3, TokensPerPeriod = 1, ReplenishmentPeriod = TimeSpan.FromSeconds(1) };

    private static CallerIdentity Caller(int i) => new($"caller-{i:D5}", "jwt", new Dictionary<string, string>());

    [Fact]
    public void A_caller_gets_its_burst_then_one_token_per_period_and_a_retry_after_until_the_next()
    {
        var time = new FakeTimeProvider();
        using var limiter = new CallerRateLimiter(Microsoft.Extensions.Options.Options.Create(Options), time);

        Assert.All(Enumerable.Range(0, 3), _ => Assert.Null(limiter.TryAcquire(Caller(1))));
        var retryAfter = limiter.TryAcquire(Caller(1));
        Assert.Null(limiter.TryAcquire(Caller(2)));
        time.Advance(TimeSpan.FromMilliseconds(400));
        var later = limiter.TryAcquire(Caller(1));
        time.Advance(TimeSpan.FromMilliseconds(600));
        var refilled = limiter.TryAcquire(Caller(1));
        var emptyAgain = limiter.TryAcquire(Caller(1));

        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(600), later);
        Assert.Null(refilled);
        Assert.NotNull(emptyAgain);
        Assert.Equal(3, limiter.Rejections);
    }

    [Fact]
    public void Buckets_of_idle_callers_are_dropped_once_full_and_a_returning_caller_starts_full()
    {
        var time = new FakeTimeProvider();
        using var limiter = new CallerRateLimiter(Microsoft.Extensions.Options.Options.Create(Options), time);

        for (var i = 0; i < 10_000; i++)
        {
            Assert.Null(limiter.TryAcquire(Caller(i)));
        }
        // Caller 0 keeps calling; it spent its whole burst, so its bucket is not full and must stay.
        Assert.Null(limiter.TryAcquire(Caller(0)));
        Assert.Null(limiter.TryAcquire(Caller(0)));
        Assert.Equal(10_000, limiter.Partitions);

        // One period: every other caller's bucket is full again (1 token back), caller 0's is not (1 of 3).
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, limiter.Partitions);

        // Two more periods: caller 0 is full again too, and nothing is left.
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, limiter.Partitions);

        // A returning caller has its whole burst, as a caller never seen before would.
        Assert.All(Enumerable.Range(0, 3), _ => Assert.Null(limiter.TryAcquire(Caller(7))));
        Assert.NotNull(limiter.TryAcquire(Caller(7)));
    }

    [Fact]
    public void A_disabled_limiter_keeps_no_buckets()
    {
        var time = new FakeTimeProvider();
        using var limiter = new CallerRateLimiter(Microsoft.Extensions.Options.Options.Create(new RateLimitOptions { Enabled = false }), time);

        for (var i = 0; i < 100; i++)
        {
            Assert.Null(limiter.TryAcquire(Caller(i)));
        }

        Assert.Equal(0, limiter.Partitions);
    }
}
