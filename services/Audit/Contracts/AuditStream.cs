namespace SecretsBroker.Audit.Contracts;

/// <summary>The Redis Stream brokers append to and the audit service consumes.</summary>
public static class AuditStream
{
    /// <summary>Default stream key.</summary>
    public const string DefaultKey = "secretsbroker:audit";

    /// <summary>
    /// The field of each entry holding the binary protobuf encoding of an AuditEvent. An entry holds one
    /// or more of them (brokers put a group of events into one entry); consumers read every one, in order.
    /// </summary>
    public const string EventField = "event";

    /// <summary>
    /// The field right after each <c>event</c> field: the event's MAC (<see cref="AuditEventMacKey"/>). An event without
    /// one, or whose MAC does not verify, is rejected by the audit service.
    /// </summary>
    public const string MacField = "mac";
}
