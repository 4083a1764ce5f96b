namespace SecretsBroker.Audit.Contracts;

/// <summary>The Redis Stream brokers append to and the audit service consumes.</summary>
public static class AuditStream
{
    /// <summary>Default stream key.</summary>
    public const string DefaultKey = "secretsbroker:audit";

    /// <summary>The one field of each entry: the binary protobuf encoding of an AuditEvent.</summary>
    public const string EventField = "event";
}
