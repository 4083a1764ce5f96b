using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends;

// What a backend can do is declared by the capability interfaces it implements; MountTable resolves a
// logical path to one of them (wrapped in the observing decorator), so no caller checks backend types.
// Names are relative to the mount (the logical path without the mount prefix) and already validated by
// LogicalPath. Implementations throw BrokerException with a safe message for every expected failure (not
// found, denied, unavailable); anything else is treated as a broker bug.

/// <summary>A backend bound to one mount. It does nothing by itself: see the capability interfaces below.</summary>
public interface ISecretBackend;

/// <summary>Reads versions of static secrets.</summary>
public interface ISecretReading : ISecretBackend
{
    /// <summary>Reads one version of a secret.</summary>
    Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken);
}

/// <summary>
/// A native multi-read (AWS BatchGetSecretValue). Backends without one are read item by item with bounded concurrency.
/// </summary>
public interface ISecretBatchReading : ISecretReading
{
    /// <summary>Reads the latest version of each distinct name; returns one result per name, in order.</summary>
    Task<IReadOnlyList<SecretReadResult>> GetManyAsync(IReadOnlyList<string> names, CancellationToken cancellationToken);
}

/// <summary>Lists secret names.</summary>
public interface ISecretListing : ISecretBackend
{
    /// <summary>
    /// Lists secrets beneath <paramref name="folder"/> ("" for the whole mount), at any depth, in ordinal order.
    /// <paramref name="continuation"/> is a cursor this backend returned before, or null for the first page.
    /// </summary>
    Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken);
}

/// <summary>Tells a secret's current version cheaply, without reading its value (the watch path polls this).</summary>
public interface ISecretVersionProbe : ISecretBackend
{
    /// <summary>The current version id, or null when the secret does not exist.</summary>
    Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken);
}

/// <summary>Issues dynamic credentials with a lease, and renews and revokes leases it issued.</summary>
public interface ICredentialIssuing : ISecretBackend
{
    /// <summary>Issues credentials for <paramref name="role"/> (the name inside the mount).</summary>
    Task<IssuedCredentials> IssueAsync(string role, CancellationToken cancellationToken);

    /// <summary>Extends a lease by <paramref name="increment"/> (the backend may grant less); NOT_FOUND when it is gone.</summary>
    Task<LeaseRenewal> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken);

    Task RevokeAsync(string leaseId, CancellationToken cancellationToken);
}

/// <summary>Raises <see cref="Changed"/> when its contents change by other means than the broker (a local file edited).</summary>
public interface ISecretChangeNotifying : ISecretBackend
{
    event Action? Changed;
}

/// <summary>Credentials as a dynamic backend issued them.</summary>
public sealed record IssuedCredentials(string LeaseId, IReadOnlyDictionary<string, string> Data, TimeSpan Duration, bool Renewable)
{
    public override string ToString() => $"IssuedCredentials {{ Duration = {Duration}, Renewable = {Renewable}, Fields = {Data.Count} }}";
}

/// <summary>The outcome of a renewal: how long the lease now lasts, and whether it can be renewed again.</summary>
public sealed record LeaseRenewal(TimeSpan Duration, bool Renewable);

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
