using System.Globalization;
using System.Security.Cryptography;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Files;

namespace SecretsBroker.Broker.Backends.Keyring;

/// <summary>
/// Mount type <c>local-keyring</c>: AES-256-GCM under keys the broker holds (development, the quick start, small
/// deployments). The store ciphertext is <c>nonce (12 random bytes) | ciphertext | tag (16 bytes)</c>, with the broker's
/// canonical header-and-context bytes as AAD, so a wrong context, key, kind or edited header fails to decrypt.
/// Random 96-bit nonces: NIST SP 800-38D section 8.3 allows 2^32 encryptions per key; rotate well before that.
/// </summary>
public sealed class LocalKeyringBackend(Func<KeyringSnapshot> keyring, IDisposable? file = null) : IKeyStore, IDisposable
{
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    public LocalKeyringBackend(ReloadingFile<KeyringSnapshot> file) : this(() => file.Current, file)
    {
    }

    public Task<StoreCiphertext> EncryptAsync(string key, KeyStoreInput input, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken) =>
        Task.FromResult(Seal(Find(key), input, plaintext.Span));

    public Task<StorePlaintext> DecryptAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken) =>
        Task.FromResult(Open(Find(key), input, ciphertext));

    public Task<StoreDataKey> GenerateDataKeyAsync(string key, KeyStoreInput input, CancellationToken cancellationToken)
    {
        var found = Find(key);
        var dataKey = RandomNumberGenerator.GetBytes(Keyring.KeyBytes);
        return Task.FromResult(new StoreDataKey(dataKey, Seal(found, input, dataKey)));
    }

    public Task<StoreCiphertext> RewrapAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken)
    {
        var found = Find(key);
        var opened = Open(found, input, ciphertext);
        try
        {
            return Task.FromResult(Seal(found, input, opened.Plaintext));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(opened.Plaintext);
        }
    }

    public void Dispose() => file?.Dispose();

    private KeyringKey Find(string key)
    {
        if (!keyring().Keys.TryGetValue(key, out var found))
        {
            BrokerException.ThrowNotFound("key not found");
        }
        return found;
    }

    private static StoreCiphertext Seal(KeyringKey key, KeyStoreInput input, ReadOnlySpan<byte> plaintext)
    {
        var blob = new byte[NonceBytes + plaintext.Length + TagBytes];
        var nonce = blob.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key.Versions[key.Latest], TagBytes);
        aes.Encrypt(nonce, plaintext, blob.AsSpan(NonceBytes, plaintext.Length), blob.AsSpan(NonceBytes + plaintext.Length), input.Aad.Span);
        return new StoreCiphertext(key.Latest.ToString(CultureInfo.InvariantCulture), blob);
    }

    private static StorePlaintext Open(KeyringKey key, KeyStoreInput input, StoreCiphertext ciphertext)
    {
        if (!int.TryParse(ciphertext.Version, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1)
        {
            BrokerException.ThrowInvalidArgument("the ciphertext's key version is not a local keyring version");
        }
        if (version < key.MinDecryptionVersion)
        {
            BrokerException.ThrowFailedPrecondition(
                $"the ciphertext's key version {version} is below the key's minimum decryption version {key.MinDecryptionVersion}");
        }
        if (!key.Versions.TryGetValue(version, out var material))
        {
            BrokerException.ThrowInvalidArgument($"the key has no version {version}");
        }
        var blob = ciphertext.Blob;
        if (blob.Length < NonceBytes + TagBytes)
        {
            BrokerException.ThrowInvalidArgument("the ciphertext is truncated");
        }
        var plaintext = new byte[blob.Length - NonceBytes - TagBytes];
        using var aes = new AesGcm(material, TagBytes);
        try
        {
            aes.Decrypt(blob.AsSpan(0, NonceBytes), blob.AsSpan(NonceBytes, plaintext.Length), blob.AsSpan(NonceBytes + plaintext.Length), plaintext, input.Aad.Span);
        }
        catch (AuthenticationTagMismatchException)
        {
            BrokerException.ThrowInvalidArgument(DecryptionFailed);
        }
        return new StorePlaintext(ciphertext.Version, plaintext);
    }

    internal const string DecryptionFailed = "the ciphertext does not decrypt under its key with this context (wrong context, or the ciphertext was altered)";
}
