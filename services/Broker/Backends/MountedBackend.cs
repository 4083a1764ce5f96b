using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends;

/// <summary>
/// A mount with its backend. The backend is reached only through <see cref="Capability{T}"/>, which hands out the
/// observing decorator, so every call (reads, listings, version probes, lease work) is measured the same way.
/// </summary>
public sealed class MountedBackend
{
    private readonly ISecretBackend _backend;
    private readonly ObservedBackend _observed;

    /// <param name="observer">Null only where a mount table is built without the broker's services (unit tests).</param>
    public MountedBackend(MountDefinition mount, ISecretBackend backend, BackendCallObserver? observer)
    {
        Mount = mount;
        _backend = backend;
        _observed = new ObservedBackend(mount, backend, observer);
        observer?.Register(mount, backend);
    }

    public MountDefinition Mount { get; }

    /// <summary>The backend's capability <typeparamref name="T"/>, observed; null when the backend does not have it.</summary>
    public T? Capability<T>() where T : class, ISecretBackend => _backend is T ? _observed as T : null;

    /// <summary>Readiness' probe of the backend, when it has one (probes are measured by the health checks, not as calls).</summary>
    public IBackendHealthProbe? HealthProbe => _backend as IBackendHealthProbe;

    /// <summary>The backend itself, for <see cref="MountTable.Dispose"/> and for tests that reach into a concrete backend; features use <see cref="Capability{T}"/>.</summary>
    public ISecretBackend Backend => _backend;

    public override string ToString() => $"MountedBackend {{ Prefix = {Mount.Prefix}, Type = {Mount.Type} }}";
}

/// <summary>A logical path resolved to its mount, the name inside the mount, and the mount's (observed) read capability.</summary>
public sealed record ResolvedSecret(string Path, MountDefinition Mount, string Name, ISecretReading Reader);
