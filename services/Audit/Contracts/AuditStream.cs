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
}
