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
[JsonSerializable(typeof(WatchMessage))]
[JsonSerializable(typeof(WatchTarget))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;

/// <summary>A detected change as published to every replica (sealed on Redis pub/sub).</summary>
public sealed record WatchMessage(string Path, string Version, DateTimeOffset Time);

/// <summary>A watched path or prefix, as shared between replicas so the polling replica knows what to poll.</summary>
public sealed record WatchTarget(string Path, bool IsPrefix, DateTimeOffset LastSeen);
