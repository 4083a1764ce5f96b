using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Leases;

/// <summary>Lease keeping (<c>Broker:Leases</c>): renewal timing, rotation overlap, the grace period of ended streams.</summary>
public sealed class LeaseOptions
{
    public const string SectionName = "Broker:Leases";

    /// <summary>Fraction of a lease's TTL after which it is renewed.</summary>
    [Range(0.1, 0.95)]
    public double RenewAtFraction { get; set; } = 2.0 / 3.0;

    /// <summary>Up to this fraction of the TTL is taken off each renewal time at random, so leases issued together do not renew together.</summary>
    [Range(0.0, 0.3)]
    public double RenewJitter { get; set; } = 0.1;

    /// <summary>After a rotation, how long the old credentials stay valid before the old lease is revoked (never past its own expiry).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan RotationOverlap { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the leases of an ended KeepAlive stream wait to be attached again before they are revoked.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "1.00:00:00")]
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often every replica looks for leases whose grace period is over.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>After a failed renewal or rotation, how long before the broker tries again (while the lease lives).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// When renewals keep failing (the backend answers 500s), the lease is rotated (fresh credentials, if issuing still
    /// works) once a retry would leave less than this fraction of its TTL, instead of waiting for it to expire.
    /// </summary>
    [Range(0.0, 0.5)]
    public double RotateOnFailureWindow { get; set; } = 0.1;

    /// <summary>Most renewals, rotations and revocations in flight at once against the backends.</summary>
    [Range(1, 1024)]
    public int MaxConcurrentOperations { get; set; } = 32;

    /// <summary>How often each replica tells the shared registry it is alive (and looks for replicas that fell silent).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan ReplicaHeartbeat { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A replica silent this long is taken for crashed: a survivor hands its leases to the grace period, as if their streams had
    /// ended. Keep it well above the heartbeat and above any pause a live replica may have (GC, a Redis failover).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.200", "01:00:00")]
    public TimeSpan ReplicaSilentAfter { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Most leases one KeepAlive stream may hold.</summary>
    [Range(1, 1_000_000)]
    public int MaxLeasesPerStream { get; set; } = 10_000;
}

[OptionsValidator]
public sealed partial class LeaseOptionsValidator : IValidateOptions<LeaseOptions>;
