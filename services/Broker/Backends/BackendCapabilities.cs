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

/// <summary>
/// Writes new versions of static secrets (PutSecret; rotation builds on it). A backend that can be written only when
/// configured so (a local file) implements it and refuses with FAILED_PRECONDITION otherwise.
/// </summary>
public interface ISecretWriter : ISecretBackend
{
    /// <summary>
    /// Writes a new version of <paramref name="name"/> and answers its id and creation time. With
    /// <see cref="SecretWrite.ExpectedVersion"/> the write is check-and-set: when the current version differs the
    /// backend throws <see cref="CheckAndSet.Mismatch"/> (FAILED_PRECONDITION naming the current version).
    /// </summary>
    Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken);
}

/// <summary>
/// Staging labels of versions (aws-sm's AWSCURRENT / AWSPENDING / AWSPREVIOUS) and the store's own rotation: what a staged
/// rotation needs besides <see cref="ISecretWriter"/> (writes with <see cref="SecretWrite.Stages"/>).
/// </summary>
public interface ISecretStaging : ISecretBackend
{
    /// <summary>Every version id of a secret with its staging labels.</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVersionStagesAsync(string name, CancellationToken cancellationToken);

    /// <summary>Moves <paramref name="stage"/> to <paramref name="toVersion"/> from <paramref name="fromVersion"/> (either may be null: add or remove).</summary>
    Task MoveStageAsync(string name, string stage, string? toVersion, string? fromVersion, CancellationToken cancellationToken);

    /// <summary>Starts the store's own rotation (AWS RotateSecret with the secret's Lambda) and answers the new version's id.</summary>
    Task<string> StartManagedRotationAsync(string name, string clientRequestToken, CancellationToken cancellationToken);
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

/// <summary>
/// One write: exactly one of <see cref="Data"/> and <see cref="Binary"/>. <see cref="ExpectedVersion"/>: null writes
/// unconditionally, "" only if the secret does not exist yet, a version id only if it is the current version.
/// </summary>
public sealed record SecretWrite
{
    public IReadOnlyDictionary<string, string>? Data { get; init; }

    public byte[]? Binary { get; init; }

    public string? ExpectedVersion { get; init; }

    /// <summary>
    /// Makes retries of one logical write create one version (aws-sm: the ClientRequestToken, 32 to 64 characters, which
    /// becomes the VersionId). Null: a new token per call. Backends without idempotency tokens ignore it.
    /// </summary>
    public string? IdempotencyToken { get; init; }

    /// <summary>
    /// Staging labels for the new version (aws-sm only, for example AWSPENDING during a staged rotation). Null: the
    /// backend's default (the new version becomes current). Backends without stages refuse a non-null value.
    /// </summary>
    public IReadOnlyList<string>? Stages { get; init; }

    // Never print the value.
    public override string ToString() =>
        $"SecretWrite {{ Fields = {Data?.Count ?? 0}, Binary = {Binary is not null}, ExpectedVersion = {ExpectedVersion ?? "(any)"}, Stages = {Stages?.Count ?? 0} }}";
}

/// <summary>The version a write created: its id as the backend names it and when the backend created it.</summary>
public sealed record WrittenVersion(string Version, DateTimeOffset? CreatedAt);

/// <summary>The one wording of a failed check-and-set, shared by every backend.</summary>
public static class CheckAndSet
{
    /// <summary>FAILED_PRECONDITION naming the current version (null: the secret does not exist).</summary>
    public static BrokerException Mismatch(string? currentVersion) => new(BrokerErrorKind.FailedPrecondition, currentVersion is null
        ? "check-and-set failed: the secret does not exist, so no version is current"
        : $"check-and-set failed: the current version is {currentVersion}");

    /// <summary>Whether <paramref name="expected"/> (see <see cref="SecretWrite.ExpectedVersion"/>) matches <paramref name="current"/>.</summary>
    public static bool Matches(string? expected, string? current) =>
        expected is null || (expected.Length == 0 ? current is null : string.Equals(expected, current, StringComparison.Ordinal));
}
