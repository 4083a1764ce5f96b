using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Leases;

/// <summary>What happened to a lease, for its KeepAlive stream.</summary>
public enum LeaseNoticeType
{
    Attached,
    Renewed,
    Rotated,
    Revoked,
    Expired,
    Error,
}

/// <summary>One event of a KeepAlive stream; <see cref="ErrorCode"/> is set for <see cref="LeaseNoticeType.Error"/>.</summary>
public sealed record LeaseNotice(string LeaseId, LeaseNoticeType Type, DateTimeOffset Time, DateTimeOffset? ExpiresAt = null, IssuedLease? RotatedTo = null,
    BrokerErrorKind? ErrorCode = null, string? ErrorMessage = null)
{
    public static LeaseNotice Failed(string leaseId, DateTimeOffset time, BrokerErrorKind code, string message, DateTimeOffset? expiresAt = null) =>
        new(leaseId, LeaseNoticeType.Error, time, expiresAt, ErrorCode: code, ErrorMessage: message);

    public override string ToString() => $"LeaseNotice {{ Type = {Type}, ErrorCode = {ErrorCode} }}";
}
