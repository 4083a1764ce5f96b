using System.Text.Json.Serialization;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// What the registry knows of a lease: the lease id (needed to renew and revoke it), the role path, the
/// caller it was issued to, when it expires, and (as read back) which replica and stream keep it alive. Never
/// the credentials. In Redis the record is sealed with the cache key ring and keyed by an HMAC of the lease id;
/// the owner is stored apart from it so take-over and release can be atomic.
/// </summary>
public sealed record LeaseRecord(
    string LeaseId,
    string Path,
    string Subject,
    TimeSpan Ttl,
    bool Renewable,
    DateTimeOffset ExpiresAt,
    string Owner = "",
    string StreamId = "");

[JsonSerializable(typeof(LeaseRecord))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;
