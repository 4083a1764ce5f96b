using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Access;

/// <summary>
/// One audited operation in progress: who asked for which action on which path, and what the guard and the
/// operation learned on the way (the mount, the lease, what was served), so that its one audit event, allowed or
/// refused, says all of it.
/// </summary>
public sealed class AccessAttempt(AccessContext access, string action, string path)
{
    public AccessContext Access { get; } = access;

    /// <summary>The authenticated caller (the interceptor admits no other).</summary>
    public CallerIdentity Caller => Access.Caller!;

    public string Action { get; } = action;

    /// <summary>The logical path as the caller sent it; the audit event leaves it out when it is malformed.</summary>
    public string Path { get; set; } = path;

    public string? Mount { get; set; }

    public string? LeaseId { get; set; }

    public ServedSecret? Served { get; set; }

    /// <summary>The version the action produced or used when nothing was served: a write's new version, a crypto operation's key version (never the key, plaintext or context).</summary>
    public string? Version { get; set; }

    /// <summary>Set by an operation that recorded its allowed event itself (it must act on the outcome, e.g. revoke unreturned credentials).</summary>
    public bool AllowedRecorded { get; set; }

    public AuditEntry ToEntry() => new(Action, Path, Mount ?? Served?.Mount.Prefix) { Served = Served, LeaseId = LeaseId, Version = Version };
}

/// <summary>What an authorized request may use: the mount's capability and the name inside the mount.</summary>
public readonly record struct Authorized<T>(T Capability, MountedBackend Mounted, string Name) where T : class
{
    public MountDefinition Mount => Mounted.Mount;
}
