using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Backends;

/// <summary>
/// A place secrets live, bound to one mount. Names are relative to the mount (the logical path
/// without the mount prefix) and already validated by <see cref="LogicalPath"/>.
/// Implementations throw <see cref="BrokerException"/> with a safe message for every expected failure
/// (not found, denied, unavailable); anything else is treated as a broker bug.
/// </summary>
public interface ISecretBackend
{
    /// <summary>Reads one version of a secret.</summary>
    Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken);

    /// <summary>
    /// Lists secrets beneath <paramref name="folder"/> ("" for the whole mount), at any depth.
    /// <paramref name="continuation"/> is a cursor this backend returned before, or null for the first page.
    /// </summary>
    Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken);
}

/// <summary>
/// A backend with a native multi-read (AWS BatchGetSecretValue). Backends without one are read item by
/// item with bounded concurrency.
/// </summary>
public interface IBatchSecretBackend : ISecretBackend
{
    /// <summary>Reads the latest version of each distinct name; returns one result per name, in order.</summary>
    Task<IReadOnlyList<SecretReadResult>> GetManyAsync(IReadOnlyList<string> names, CancellationToken cancellationToken);
}

/// <summary>Creates backends of one mount type (for example <c>local</c>) from a mount's configuration section.</summary>
public interface ISecretBackendFactory
{
    /// <summary>The mount type this factory serves, as written in configuration.</summary>
    string MountType { get; }

    /// <summary>
    /// Builds the backend for <paramref name="mount"/>. Throws <see cref="Microsoft.Extensions.Options.OptionsValidationException"/>
    /// (or another exception with a clear message) when the section is invalid, so the broker refuses to start.
    /// </summary>
    ISecretBackend Create(MountDefinition mount, IConfigurationSection settings);
}
