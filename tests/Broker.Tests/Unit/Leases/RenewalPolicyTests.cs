using CsCheck;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Leases;

namespace SecretsBroker.Broker.Tests.Unit.Leases;

/// <summary>The keeper's renew/rotate timing and decisions (docs/leases.md), as the pure functions they are.</summary>
public sealed class RenewalPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Without_jitter_a_lease_is_renewed_at_two_thirds_of_its_ttl()
    {
        var options = new LeaseOptions { RenewJitter = 0.1 };
        var ttl = TimeSpan.FromSeconds(90);

        var due = RenewalPolicy.NextDue(ttl, Now + ttl, Now, options, random: 0);

        Assert.Equal(Now + TimeSpan.FromSeconds(60), due);
    }

    [Fact]
    public void Jitter_only_moves_the_renewal_earlier_by_at_most_its_fraction_of_the_ttl()
    {
        var settings = Gen.Select(
            Gen.Double[0.1, 0.95],              // RenewAtFraction, as validated
            Gen.Double[0.0, 0.3],               // RenewJitter, as validated
            Gen.Long[1, 86_400_000],            // TTL in ms: 1 ms to a day
            Gen.Long[0, 86_400_000],            // how long ago the lease was issued or renewed
            Gen.Double[0.0, 0.999_999_999]);    // Random.NextDouble: [0, 1)
        settings.Sample((fraction, jitter, ttlMs, elapsedMs, random) =>
        {
            var options = new LeaseOptions { RenewAtFraction = fraction, RenewJitter = jitter };
            var ttl = TimeSpan.FromMilliseconds(ttlMs);
            var expiresAt = Now - TimeSpan.FromMilliseconds(elapsedMs) + ttl;

            var due = RenewalPolicy.NextDue(ttl, expiresAt, Now, options, random);
            var latest = expiresAt - ttl * (1 - fraction);
            var earliest = latest - ttl * jitter;
            // TimeSpan arithmetic rounds to ticks; allow one tick either way.
            return due <= latest + TimeSpan.FromTicks(1) && due >= earliest - TimeSpan.FromTicks(1);
        });
    }

    [Fact]
    public void A_larger_random_draw_never_renews_later()
    {
        var options = new LeaseOptions { RenewJitter = 0.3 };
        var ttl = TimeSpan.FromMinutes(10);
        var draws = new[] { 0.0, 0.25, 0.5, 0.75, 0.999 };

        var dues = draws.Select(r => RenewalPolicy.NextDue(ttl, Now + ttl, Now, options, r)).ToList();

        Assert.Equal(dues.OrderDescending(), dues);
        Assert.Equal(Now + ttl * (2.0 / 3.0) - ttl * (0.3 * 0.999), dues[^1]);
    }

    [Fact]
    public void A_lease_without_a_known_ttl_is_timed_from_what_is_left_of_it()
    {
        var options = new LeaseOptions { RenewJitter = 0 };
        var expiresAt = Now + TimeSpan.FromSeconds(30);

        var due = RenewalPolicy.NextDue(TimeSpan.Zero, expiresAt, Now, options, random: 0.5);

        Assert.Equal(Now + TimeSpan.FromSeconds(20), due);
    }

    [Theory]
    [InlineData(3600, 3600, true, RenewalDecision.Reschedule)]
    [InlineData(3600, 7200, true, RenewalDecision.Reschedule)]
    // The backend granted less than asked: the max TTL caps the lease, so renewing again cannot extend it.
    [InlineData(3600, 1200, true, RenewalDecision.Rotate)]
    [InlineData(3600, 3599, true, RenewalDecision.Rotate)]
    [InlineData(3600, 3600, false, RenewalDecision.Rotate)]
    public void After_a_renewal_only_a_full_renewable_grant_is_renewed_again(int ttlSeconds, int grantedSeconds, bool renewable, RenewalDecision expected)
    {
        var decision = RenewalPolicy.AfterRenewal(TimeSpan.FromSeconds(ttlSeconds), TimeSpan.FromSeconds(grantedSeconds), renewable);

        Assert.Equal(expected, decision);
    }

    public static TheoryData<BrokerErrorKind> EveryErrorKind() => new(Enum.GetValues<BrokerErrorKind>());

    [Theory]
    [MemberData(nameof(EveryErrorKind))]
    public void After_a_failed_renewal_refusals_rotate_and_outages_retry(BrokerErrorKind kind)
    {
        // Refusals say the lease cannot be renewed any more (gone, not renewable, not ours): only fresh credentials help.
        BrokerErrorKind[] refusals = [BrokerErrorKind.FailedPrecondition, BrokerErrorKind.NotFound, BrokerErrorKind.InvalidArgument, BrokerErrorKind.PermissionDenied];
        var expected = refusals.Contains(kind) ? RenewalDecision.Rotate : RenewalDecision.RetryOrExpire;

        Assert.Equal(expected, RenewalPolicy.AfterRenewalFailure(kind));
    }

    [Fact]
    public void Outages_of_the_backend_are_retried_not_rotated()
    {
        Assert.Equal(RenewalDecision.RetryOrExpire, RenewalPolicy.AfterRenewalFailure(BrokerErrorKind.Unavailable));
        Assert.Equal(RenewalDecision.RetryOrExpire, RenewalPolicy.AfterRenewalFailure(BrokerErrorKind.DeadlineExceeded));
        Assert.Equal(RenewalDecision.RetryOrExpire, RenewalPolicy.AfterRenewalFailure(BrokerErrorKind.ResourceExhausted));
    }

    [Theory]
    [InlineData(10_000, true)]
    [InlineData(1_001, true)]
    [InlineData(1_000, false)] // the retry would land exactly at expiry: too late
    [InlineData(500, false)]
    [InlineData(-1_000, false)]
    public void A_retry_is_only_scheduled_when_it_lands_before_the_lease_expires(int expiresInMs, bool expected)
    {
        var options = new LeaseOptions { RetryDelay = TimeSpan.FromSeconds(1) };

        Assert.Equal(expected, RenewalPolicy.CanRetry(Now, Now + TimeSpan.FromMilliseconds(expiresInMs), options));
    }

    [Fact]
    public void Replaced_credentials_are_revoked_after_the_overlap_but_never_after_they_expire()
    {
        var options = new LeaseOptions { RotationOverlap = TimeSpan.FromSeconds(30) };

        Assert.Equal(Now + TimeSpan.FromSeconds(30), RenewalPolicy.RevokeReplacedAt(Now, Now + TimeSpan.FromMinutes(5), options));
        Assert.Equal(Now + TimeSpan.FromSeconds(12), RenewalPolicy.RevokeReplacedAt(Now, Now + TimeSpan.FromSeconds(12), options));
    }

    [Fact]
    public void Transient_renewal_failures_are_retried_while_a_retry_still_comes_before_the_rotation_window()
    {
        var options = new LeaseOptions { RetryDelay = TimeSpan.FromSeconds(1), RotateOnFailureWindow = 0.1 };
        var ttl = TimeSpan.FromSeconds(60);
        var expiresAt = Now + TimeSpan.FromSeconds(20);

        // Window: the last 6 s. A retry at +1 s still comes 19 s before the expiry.
        Assert.Equal(RenewalDecision.RetryOrExpire, RenewalPolicy.AfterTransientRenewalFailure(Now, expiresAt, ttl, options));
        // 6.5 s left: the retry would land 5.5 s before the expiry, inside the window: rotate now.
        Assert.Equal(RenewalDecision.Rotate, RenewalPolicy.AfterTransientRenewalFailure(expiresAt - TimeSpan.FromSeconds(6.5), expiresAt, ttl, options));
        // 7.5 s left: the retry lands 6.5 s before the expiry, still outside the window.
        Assert.Equal(RenewalDecision.RetryOrExpire, RenewalPolicy.AfterTransientRenewalFailure(expiresAt - TimeSpan.FromSeconds(7.5), expiresAt, ttl, options));
        // Past the expiry nothing can be renewed or rotated in its place: it expires.
        Assert.Equal(RenewalDecision.Expire, RenewalPolicy.AfterTransientRenewalFailure(expiresAt, expiresAt, ttl, options));
    }

    [Fact]
    public void A_retry_delay_longer_than_what_is_left_rotates_instead_of_letting_the_lease_expire()
    {
        var options = new LeaseOptions { RetryDelay = TimeSpan.FromSeconds(30), RotateOnFailureWindow = 0 };
        var ttl = TimeSpan.FromSeconds(60);

        // 20 s left, the next retry would come after the expiry: rotation is the last chance (before: EXPIRED).
        Assert.Equal(RenewalDecision.Rotate, RenewalPolicy.AfterTransientRenewalFailure(Now, Now + TimeSpan.FromSeconds(20), ttl, options));
    }

    [Fact]
    public void Transient_failures_always_end_in_a_rotation_attempt_before_the_expiry()
    {
        var settings = Gen.Select(Gen.Long[10, 600_000], Gen.Double[0.0, 0.5], Gen.Long[1, 600_000], Gen.Long[10, 86_400_000]);
        settings.Sample((retryMs, window, failedAtMs, ttlMs) =>
        {
            var options = new LeaseOptions { RetryDelay = TimeSpan.FromMilliseconds(retryMs), RotateOnFailureWindow = window };
            var ttl = TimeSpan.FromMilliseconds(ttlMs);
            var expiresAt = Now + TimeSpan.FromMilliseconds(failedAtMs);
            // Follow the retries: every failure either retries after RetryDelay or rotates, and a rotation happens before the expiry.
            var at = Now;
            while (RenewalPolicy.AfterTransientRenewalFailure(at, expiresAt, ttl, options) == RenewalDecision.RetryOrExpire)
            {
                at += options.RetryDelay;
            }
            return at < expiresAt && RenewalPolicy.AfterTransientRenewalFailure(at, expiresAt, ttl, options) == RenewalDecision.Rotate;
        });
    }
}
