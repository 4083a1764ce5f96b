using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// What one audit event is about, besides who asked (<see cref="Auth.AccessContext"/>) and the decision: the action,
/// the logical path (left out of the event when malformed), the mount, and what was served or which lease was touched.
/// </summary>
public sealed record AuditEntry(string Action, string Path = "", string? Mount = null)
{
    /// <summary>The secret returned, for its version and cache source.</summary>
    public ServedSecret? Served { get; init; }

    /// <summary>A lease id; the event carries only its HMAC.</summary>
    public string? LeaseId { get; init; }

    /// <summary>A version the action concerned when no secret was served (a watch event).</summary>
    public string? Version { get; init; }

    public static AuditEntry ForServed(string action, ServedSecret served) => new(action, served.Path, served.Mount.Prefix) { Served = served };
}
