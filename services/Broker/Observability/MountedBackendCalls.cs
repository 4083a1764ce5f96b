using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Backends;

/// <summary>
/// The one way the broker calls a mount's backend: each call is measured by <see cref="BackendCallObserver"/>
/// (metrics by mount, mount type, operation and outcome; a span; readiness' failure count). Code that
/// needs a backend-specific operation (issuing credentials, renewing a lease) wraps it in <see cref="ObserveAsync{T}"/>.
/// </summary>
public sealed partial record MountedBackend
{
    /// <summary>Set by <see cref="MountTable"/>; null only where a mount table is built without the broker's services (unit tests).</summary>
    public BackendCallObserver? Observer { get; init; }

    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Get, ct => Backend.GetAsync(name, selector, ct), cancellationToken);

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.List, ct => Backend.ListAsync(folder, pageSize, continuation, ct), cancellationToken);

    public Task<IReadOnlyList<SecretReadResult>> GetManyAsync(IBatchSecretBackend backend, IReadOnlyList<string> names, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.GetMany, ct => backend.GetManyAsync(names, ct), cancellationToken);

    /// <summary>Runs <paramref name="call"/> against this mount's backend as operation <paramref name="operation"/> (a fixed name such as "issue").</summary>
    public Task<T> ObserveAsync<T>(string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken) =>
        Observer is null ? call(cancellationToken) : Observer.ObserveAsync(Mount, operation, call, cancellationToken);
}
