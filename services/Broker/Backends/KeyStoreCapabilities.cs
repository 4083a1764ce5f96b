namespace SecretsBroker.Broker.Backends;

// Key stores (local keyring, Vault transit, AWS KMS) are backends with one capability: they encrypt under keys
// they hold and never hand the key out. Key names are relative to the mount, like secret names. The context is
// already canonically encoded by the crypto feature (Crypto/CryptoContext); each store binds it its own way
// (AAD, transit derived-key context and associated data, KMS EncryptionContext).

/// <summary>Encrypts and decrypts small values and data keys under named, versioned keys.</summary>
public interface IKeyStore : ISecretBackend
{
    /// <summary>Encrypts <paramref name="plaintext"/> under the latest version of <paramref name="key"/>.</summary>
    Task<StoreCiphertext> EncryptAsync(string key, KeyStoreInput input, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken);

    /// <summary>
    /// Decrypts what <see cref="EncryptAsync"/> or <see cref="GenerateDataKeyAsync"/> returned. A wrong context or a
    /// tampered ciphertext is INVALID_ARGUMENT; a version below the key's minimum decryption version FAILED_PRECONDITION.
    /// </summary>
    Task<StorePlaintext> DecryptAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken);

    /// <summary>A fresh 256-bit data key, in plaintext and encrypted under the latest version of <paramref name="key"/>.</summary>
    Task<StoreDataKey> GenerateDataKeyAsync(string key, KeyStoreInput input, CancellationToken cancellationToken);

    /// <summary>Re-encrypts under the latest version of <paramref name="key"/>, without the plaintext leaving the store.</summary>
    Task<StoreCiphertext> RewrapAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken);
}

/// <summary>
/// What binds a ciphertext besides the key: <see cref="Aad"/> is the canonical encoding of the broker's ciphertext header
/// and the caller's context (for stores that take bytes); <see cref="Context"/> the caller's pairs plus the broker's
/// reserved ones (for stores that take a string map, KMS EncryptionContext).
/// </summary>
public sealed record KeyStoreInput(ReadOnlyMemory<byte> Aad, IReadOnlyDictionary<string, string> Context)
{
    public override string ToString() => $"KeyStoreInput {{ Pairs = {Context.Count} }}";
}

/// <summary>A key store's ciphertext and the key version that made it ("" when the store keeps versions inside the blob).</summary>
public sealed record StoreCiphertext(string Version, byte[] Blob)
{
    public override string ToString() => $"StoreCiphertext {{ Version = {Version}, Bytes = {Blob.Length} }}";
}

/// <summary>Decrypted bytes and the key version that had encrypted them.</summary>
public sealed record StorePlaintext(string Version, byte[] Plaintext)
{
    public override string ToString() => $"StorePlaintext {{ Version = {Version} }}";
}

/// <summary>A data key in plaintext and wrapped.</summary>
public sealed record StoreDataKey(byte[] PlaintextKey, StoreCiphertext Wrapped)
{
    public override string ToString() => $"StoreDataKey {{ Version = {Wrapped.Version} }}";
}
