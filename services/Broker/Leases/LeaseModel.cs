using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends.Vault;

namespace SecretsBroker.Broker.Leases;

/// <summary>Credentials with their lease, as issued (or rotated to).</summary>
public sealed record IssuedLease(string LeaseId, string Path, IReadOnlyDictionary<string, string> Credentials, TimeSpan Ttl, bool Renewable,
    DateTimeOffset ExpiresAt)
{
    public override string ToString() => $"IssuedLease {{ Ttl = {Ttl}, Renewable = {Renewable}, Fields = {Credentials.Count} }}";
}

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

/// <summary>One event of a KeepAlive stream.</summary>
public sealed record LeaseNotice(string LeaseId, LeaseNoticeType Type, DateTimeOffset Time, DateTimeOffset? ExpiresAt = null, IssuedLease? RotatedTo = null,
    StatusCode ErrorCode = StatusCode.OK, string? ErrorMessage = null)
{
    public override string ToString() => $"LeaseNotice {{ Type = {Type}, ErrorCode = {ErrorCode} }}";
}

/// <summary>One KeepAlive stream: its caller, the leases attached to it, and the events waiting to be sent.</summary>
public sealed class KeepAliveSession(AccessContext access)
{
    public string Id { get; } = Guid.NewGuid().ToString("n");

    public AccessContext Access { get; } = access;

    public CallerIdentity Caller => Access.Caller!;

    public Channel<LeaseNotice> Events { get; } = Channel.CreateUnbounded<LeaseNotice>(new UnboundedChannelOptions { SingleReader = true });

    public ConcurrentDictionary<string, LeaseState> Leases { get; } = new(StringComparer.Ordinal);

    public bool Ended { get; set; }

    public void Send(LeaseNotice notice)
    {
        if (!Ended)
        {
            Events.Writer.TryWrite(notice);
        }
    }
}

/// <summary>A lease this replica keeps alive: what renewing it needs, and the stream it reports to.</summary>
public sealed class LeaseState(string leaseId, string path, string subject, VaultDynamicBackend backend, string mount, string role, KeepAliveSession? session)
{
    public string LeaseId { get; } = leaseId;
    public string Path { get; } = path;
    public string Subject { get; } = subject;
    public VaultDynamicBackend Backend { get; } = backend;
    public string Mount { get; } = mount;
    public string Role { get; } = role;
    public KeepAliveSession? Session { get; } = session;
    public TimeSpan Ttl { get; set; }
    public bool Renewable { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>Bumped whenever scheduled work for this lease must be skipped (detached, rotated, revoked).</summary>
    public long Generation;

    public override string ToString() => $"LeaseState {{ Mount = {Mount}, Ttl = {Ttl} }}";
}
