using Google.Protobuf;
using SecretsBroker.Client.Envelope;
using SecretsBroker.V1;
using CryptoClient = SecretsBroker.V1.Crypto.CryptoClient;

namespace SecretsBroker.Client;

/// <summary>
/// The Crypto service (protos/secretsbroker/v1/crypto.proto): small values through the broker, and data keys
/// for envelope encryption (<see cref="EnvelopeEncryption"/>, which takes this client as its key source).
/// Context values travel to the broker only, which audits them as a keyed digest.
/// </summary>
public sealed partial class BrokerClient : IEnvelopeKeySource
{
    /// <summary>The generated Crypto client, for calls this wrapper does not cover.</summary>
    public CryptoClient RawCrypto => crypto ?? throw new InvalidOperationException("this BrokerClient was created without a Crypto client");

    /// <summary>Encrypts a small value (up to the broker's per-call limit) under the latest version of <paramref name="keyPath"/>.</summary>
    public async Task<EncryptResponse> EncryptAsync(string keyPath, ReadOnlyMemory<byte> plaintext, IReadOnlyDictionary<string, string>? context = null,
        DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new EncryptRequest { KeyPath = keyPath, Plaintext = ByteString.CopyFrom(plaintext.Span) };
        AddContext(request.Context, context);
        return await RawCrypto.EncryptAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Decrypts a ciphertext of <see cref="EncryptAsync"/>; <paramref name="keyPath"/>, when given, must be the key it names.</summary>
    public async Task<DecryptResponse> DecryptAsync(ReadOnlyMemory<byte> ciphertext, IReadOnlyDictionary<string, string>? context = null, string? keyPath = null,
        DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new DecryptRequest { KeyPath = keyPath ?? "", Ciphertext = ByteString.CopyFrom(ciphertext.Span) };
        AddContext(request.Context, context);
        return await RawCrypto.DecryptAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>A fresh 256-bit data key, in plaintext and wrapped under the latest version of <paramref name="keyPath"/>.</summary>
    public async Task<GenerateDataKeyResponse> GenerateDataKeyAsync(string keyPath, IReadOnlyDictionary<string, string>? context = null,
        DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new GenerateDataKeyRequest { KeyPath = keyPath };
        AddContext(request.Context, context);
        return await RawCrypto.GenerateDataKeyAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Unwraps a data key of <see cref="GenerateDataKeyAsync"/>.</summary>
    public async Task<DecryptDataKeyResponse> DecryptDataKeyAsync(ReadOnlyMemory<byte> wrappedKey, IReadOnlyDictionary<string, string>? context = null,
        string? keyPath = null, DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new DecryptDataKeyRequest { KeyPath = keyPath ?? "", WrappedKey = ByteString.CopyFrom(wrappedKey.Span) };
        AddContext(request.Context, context);
        return await RawCrypto.DecryptDataKeyAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Re-encrypts a ciphertext or wrapped key under the key's latest version, without returning the plaintext.</summary>
    public async Task<RewrapResponse> RewrapAsync(ReadOnlyMemory<byte> ciphertext, IReadOnlyDictionary<string, string>? context = null, string? keyPath = null,
        DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new RewrapRequest { KeyPath = keyPath ?? "", Ciphertext = ByteString.CopyFrom(ciphertext.Span) };
        AddContext(request.Context, context);
        return await RawCrypto.RewrapAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    async Task<EnvelopeDataKey> IEnvelopeKeySource.GenerateDataKeyAsync(string keyPath, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        var response = await GenerateDataKeyAsync(keyPath, context, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new EnvelopeDataKey(response.PlaintextKey.ToByteArray(), response.WrappedKey.ToByteArray(), response.KeyPath, response.KeyVersion);
    }

    async Task<EnvelopeDataKey> IEnvelopeKeySource.DecryptDataKeyAsync(string keyPath, byte[] wrappedKey, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        // The header's key path goes along, so the broker refuses a wrapped key that names another key.
        var response = await DecryptDataKeyAsync(wrappedKey, context, keyPath, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new EnvelopeDataKey(response.PlaintextKey.ToByteArray(), wrappedKey, response.KeyPath, response.KeyVersion);
    }

    private static void AddContext(Google.Protobuf.Collections.MapField<string, string> target, IReadOnlyDictionary<string, string>? context)
    {
        if (context is not null)
        {
            foreach (var (key, value) in context)
            {
                target[key] = value;
            }
        }
    }
}
