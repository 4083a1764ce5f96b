namespace SecretsBroker.Broker.Core;

/// <summary>Which layer answered a read.</summary>
public enum ServingSource
{
    Backend,
    L1,
    L2,
}

/// <summary>A secret with where it came from, ready to be returned to a caller.</summary>
public sealed record ServedSecret(string Path, MountDefinition Mount, SecretValue Value, ServingSource Source, TimeSpan Age, bool Stale);
