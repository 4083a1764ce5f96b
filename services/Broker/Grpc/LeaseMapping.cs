using Google.Protobuf.WellKnownTypes;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Watching;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

/// <summary>Maps lease and watch results to the v1 protobuf messages.</summary>
internal static class LeaseMapping
{
    public static Lease ToProto(this IssuedLease issued)
    {
        var lease = new Lease
        {
            LeaseId = issued.LeaseId,
            Path = issued.Path,
            Ttl = Duration.FromTimeSpan(issued.Ttl),
            Renewable = issued.Renewable,
            ExpiresAt = Timestamp.FromDateTimeOffset(issued.ExpiresAt),
        };
        foreach (var (key, value) in issued.Credentials)
        {
            lease.Credentials[key] = value;
        }
        return lease;
    }

    public static LeaseEvent ToProto(this LeaseNotice notice)
    {
        var leaseEvent = new LeaseEvent
        {
            LeaseId = notice.LeaseId,
            Type = notice.Type switch
            {
                LeaseNoticeType.Attached => LeaseEventType.Attached,
                LeaseNoticeType.Renewed => LeaseEventType.Renewed,
                LeaseNoticeType.Rotated => LeaseEventType.Rotated,
                LeaseNoticeType.Revoked => LeaseEventType.Revoked,
                LeaseNoticeType.Expired => LeaseEventType.Expired,
                _ => LeaseEventType.Error,
            },
            Time = Timestamp.FromDateTimeOffset(notice.Time),
        };
        if (notice.ExpiresAt is { } expires)
        {
            leaseEvent.ExpiresAt = Timestamp.FromDateTimeOffset(expires);
        }
        if (notice.RotatedTo is { } rotated)
        {
            leaseEvent.RotatedTo = rotated.ToProto();
        }
        if (notice.Type == LeaseNoticeType.Error)
        {
            leaseEvent.Error = new ItemError { Code = (int)ErrorStatus.ToStatusCode(notice.ErrorCode ?? BrokerErrorKind.Unavailable), Message = notice.ErrorMessage ?? "" };
        }
        return leaseEvent;
    }

    public static SecretEvent ToProto(this WatchMessage message) => new()
    {
        Path = message.Path,
        Version = message.Version,
        Time = Timestamp.FromDateTimeOffset(message.Time),
    };
}
