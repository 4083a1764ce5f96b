using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends;

/// <summary>
/// The one observing decorator: implements every capability by forwarding to the wrapped backend through
/// <see cref="BackendCallObserver"/>. <see cref="MountedBackend.Capability{T}"/> hands it out only for capabilities
/// the wrapped backend has, so the casts below never fail. Never type-test an instance of it (it implements every
/// capability); ask <see cref="MountedBackend.Capability{T}"/> instead.
/// </summary>
internal sealed class ObservedBackend(MountDefinition mount, ISecretBackend inner, BackendCallObserver? observer)
    : ISecretBatchReading, ISecretListing, ISecretVersionProbe, ICredentialIssuing, ISecretChangeNotifying, IKeyStore, ISecretWriter, ISecretStaging
{
    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Get, ct => ((ISecretReading)inner).GetAsync(name, selector, ct), cancellationToken);

    public Task<IReadOnlyList<SecretReadResult>> GetManyAsync(IReadOnlyList<string> names, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.GetMany, ct => ((ISecretBatchReading)inner).GetManyAsync(names, ct), cancellationToken);

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.List, ct => ((ISecretListing)inner).ListAsync(folder, pageSize, continuation, ct), cancellationToken);

    public Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.VersionProbe, ct => ((ISecretVersionProbe)inner).GetCurrentVersionAsync(name, ct), cancellationToken);

    public Task<IssuedCredentials> IssueAsync(string role, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Issue, ct => ((ICredentialIssuing)inner).IssueAsync(role, ct), cancellationToken);

    public Task<LeaseRenewal> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Renew, ct => ((ICredentialIssuing)inner).RenewAsync(leaseId, increment, ct), cancellationToken);

    public Task RevokeAsync(string leaseId, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Revoke, async ct =>
        {
            await ((ICredentialIssuing)inner).RevokeAsync(leaseId, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task<StoreCiphertext> EncryptAsync(string key, KeyStoreInput input, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Encrypt, ct => ((IKeyStore)inner).EncryptAsync(key, input, plaintext, ct), cancellationToken);

    public Task<StorePlaintext> DecryptAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Decrypt, ct => ((IKeyStore)inner).DecryptAsync(key, input, ciphertext, ct), cancellationToken);

    public Task<StoreDataKey> GenerateDataKeyAsync(string key, KeyStoreInput input, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.DataKey, ct => ((IKeyStore)inner).GenerateDataKeyAsync(key, input, ct), cancellationToken);

    public Task<StoreCiphertext> RewrapAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Rewrap, ct => ((IKeyStore)inner).RewrapAsync(key, input, ciphertext, ct), cancellationToken);

    public Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Write, ct => ((ISecretWriter)inner).WriteVersionAsync(name, write, ct), cancellationToken);

    public Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVersionStagesAsync(string name, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.VersionProbe, ct => ((ISecretStaging)inner).GetVersionStagesAsync(name, ct), cancellationToken);

    public Task MoveStageAsync(string name, string stage, string? toVersion, string? fromVersion, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Stage, async ct =>
        {
            await ((ISecretStaging)inner).MoveStageAsync(name, stage, toVersion, fromVersion, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task<string> StartManagedRotationAsync(string name, string clientRequestToken, CancellationToken cancellationToken) =>
        ObserveAsync(BackendOperations.Stage, ct => ((ISecretStaging)inner).StartManagedRotationAsync(name, clientRequestToken, ct), cancellationToken);

    // Change notifications are events of the backend, not calls: forwarded as they are.
    public event Action? Changed
    {
        add => ((ISecretChangeNotifying)inner).Changed += value;
        remove => ((ISecretChangeNotifying)inner).Changed -= value;
    }

    private Task<T> ObserveAsync<T>(string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken) =>
        observer is null ? call(cancellationToken) : observer.ObserveAsync(mount, operation, call, cancellationToken);
}
