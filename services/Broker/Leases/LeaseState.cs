using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Leases;

/// <summary>A lease this replica keeps alive: what renewing it needs, and the stream it reports to.</summary>
public sealed class LeaseState(string leaseId, string path, string subject, ICredentialIssuing issuer, string mount, string role, KeepAliveSession? session)
{
    public string LeaseId { get; } = leaseId;
    public string Path { get; } = path;
    public string Subject { get; } = subject;

    /// <summary>The lease owner's key (<see cref="LeaseRecord.Identity"/>), carried over to the leases a rotation issues.</summary>
    public string Identity { get; init; } = "";

    /// <summary>The mount's credential capability (observed), which renews, rotates and revokes this lease.</summary>
    public ICredentialIssuing Issuer { get; } = issuer;
    public string Mount { get; } = mount;
    public string Role { get; } = role;
    public KeepAliveSession? Session { get; } = session;
    public TimeSpan Ttl { get; set; }
    public bool Renewable { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>Bumped whenever scheduled work for this lease must be skipped (detached, rotated, revoked).</summary>
    internal long Generation;

    public override string ToString() => $"LeaseState {{ Mount = {Mount}, Ttl = {Ttl} }}";
}
