namespace SecretsBroker.Broker.Core;

/// <summary>A configured mount: a logical path prefix served by one backend instance of a mount type.</summary>
public sealed record MountDefinition(string Prefix, string Type);
