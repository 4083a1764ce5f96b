using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Leases;

/// <summary>What to do with a kept-alive lease after a renewal attempt.</summary>
public enum RenewalDecision
{
    /// <summary>Renewed for its full TTL: renew again at the next due time.</summary>
    Reschedule,

    /// <summary>Fresh credentials are the only way forward (max TTL reached, not renewable, renewal refused).</summary>
    Rotate,

    /// <summary>A transient failure: try again after the retry delay, or let the lease expire if that is too late.</summary>
    RetryOrExpire,

    /// <summary>The lease has run out: it ends as EXPIRED (nothing renews an expired lease).</summary>
    Expire,
}

/// <summary>
/// The lease keeper's timing and renew/rotate decisions as pure functions of the lease, the options and the time,
/// so they are unit tested on their own (docs/leases.md explains them).
/// </summary>
public static class RenewalPolicy
{
    /// <summary>
    /// When to renew: at <see cref="LeaseOptions.RenewAtFraction"/> of the TTL before expiry, earlier by up to
    /// <see cref="LeaseOptions.RenewJitter"/> of the TTL (<paramref name="random"/> in [0, 1)) so replicas do not renew in step.
    /// </summary>
    public static DateTimeOffset NextDue(TimeSpan ttl, DateTimeOffset expiresAt, DateTimeOffset now, LeaseOptions options, double random)
    {
        var effectiveTtl = ttl > TimeSpan.Zero ? ttl : expiresAt - now;
        var jitter = effectiveTtl * (options.RenewJitter * random);
        return expiresAt - effectiveTtl * (1 - options.RenewAtFraction) - jitter;
    }

    /// <summary>After a successful renewal: a renewal that granted less than the TTL (capped by the max TTL) or is no longer renewable leads to rotation.</summary>
    public static RenewalDecision AfterRenewal(TimeSpan ttl, TimeSpan granted, bool renewable) =>
        granted >= ttl && renewable ? RenewalDecision.Reschedule : RenewalDecision.Rotate;

    /// <summary>After a failed renewal: refusals (the lease is gone, not renewable, or not ours any more) rotate; outages retry.</summary>
    public static RenewalDecision AfterRenewalFailure(BrokerErrorKind kind) => kind switch
    {
        BrokerErrorKind.FailedPrecondition or BrokerErrorKind.NotFound or BrokerErrorKind.InvalidArgument or BrokerErrorKind.PermissionDenied => RenewalDecision.Rotate,
        _ => RenewalDecision.RetryOrExpire,
    };

    /// <summary>
    /// After a transient renewal failure (a Vault 500, an outage): retry while the next attempt would still come before
    /// the last <see cref="LeaseOptions.RotateOnFailureWindow"/> of the TTL; once it would not, rotate now (fresh
    /// credentials, if issuing still works) rather than wait for the expiry; a lease already past its expiry expires.
    /// </summary>
    public static RenewalDecision AfterTransientRenewalFailure(DateTimeOffset now, DateTimeOffset expiresAt, TimeSpan ttl, LeaseOptions options)
    {
        if (now >= expiresAt)
        {
            return RenewalDecision.Expire;
        }
        var window = (ttl > TimeSpan.Zero ? ttl : TimeSpan.Zero) * options.RotateOnFailureWindow;
        return now + options.RetryDelay < expiresAt - window ? RenewalDecision.RetryOrExpire : RenewalDecision.Rotate;
    }

    /// <summary>Whether a failed attempt can be retried after <see cref="LeaseOptions.RetryDelay"/> before the lease expires.</summary>
    public static bool CanRetry(DateTimeOffset now, DateTimeOffset expiresAt, LeaseOptions options) => now + options.RetryDelay < expiresAt;

    /// <summary>When to revoke the credentials a rotation replaced: after the overlap, and never after they expire anyway.</summary>
    public static DateTimeOffset RevokeReplacedAt(DateTimeOffset now, DateTimeOffset oldExpiresAt, LeaseOptions options)
    {
        var overlapEnd = now + options.RotationOverlap;
        return overlapEnd < oldExpiresAt ? overlapEnd : oldExpiresAt;
    }
}
