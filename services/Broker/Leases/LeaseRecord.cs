using System.Text.Json.Serialization;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// What the registry knows of a lease: the lease id (needed to renew and revoke it), the role path, the
/// caller it was issued to, when it expires, and (as read back) which replica and stream keep it alive. Never
/// the credentials. In Redis the record is sealed with the cache key ring and keyed by an HMAC of the lease id;
/// the owner is stored apart from it so take-over and release can be atomic. <see cref="Subject"/> is for audit events only.
/// </summary>
public sealed record LeaseRecord(
    string LeaseId,
    string Path,
    string Subject,
    TimeSpan Ttl,
    bool Renewable,
    DateTimeOffset ExpiresAt,
    string Owner = "",
    string StreamId = "")
{
    /// <summary>
    /// The owner: <see cref="Access.AccessGuard.OwnerKey"/> of the caller that issued the lease (an HMAC of its whole identity:
    /// method, issuer, subject, namespace). Only that identity may attach or revoke it; records without one belong to nobody.
    /// </summary>
    public string Identity { get; init; } = "";
}

[JsonSerializable(typeof(LeaseRecord))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;
