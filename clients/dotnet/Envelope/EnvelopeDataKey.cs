namespace SecretsBroker.Client.Envelope;

/// <summary>A data key as Crypto.GenerateDataKey returns it: the plaintext key to use and forget, and the wrapped key to store.</summary>
public sealed record EnvelopeDataKey(byte[] PlaintextKey, byte[] WrappedKey, string KeyPath, string KeyVersion);

/// <summary>
/// Where envelope encryption gets its data keys: the broker (<see cref="BrokerClient"/> implements this with
/// GenerateDataKey and DecryptDataKey), or any key store that wraps 256-bit keys bound to a context.
/// </summary>
public interface IEnvelopeKeySource
{
    /// <summary>A fresh 256-bit data key under the latest version of <paramref name="keyPath"/>, bound to <paramref name="context"/>.</summary>
    Task<EnvelopeDataKey> GenerateDataKeyAsync(string keyPath, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken);

    /// <summary>
    /// Unwraps <paramref name="wrappedKey"/>, which the header says is wrapped under <paramref name="keyPath"/>;
    /// returns the plaintext key with the key path and version the key store unwrapped it with.
    /// </summary>
    Task<EnvelopeDataKey> DecryptDataKeyAsync(string keyPath, byte[] wrappedKey, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken);
}
