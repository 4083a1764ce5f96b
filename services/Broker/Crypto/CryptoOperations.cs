using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Crypto;

/// <summary>
/// Encryption as a service: every operation goes through the access guard (validate, authorize, audit with key path and
/// version; never plaintext, keys or context values), then to the key store mounted at the key path. Transport concerns
/// stay in Grpc/.
/// </summary>
public sealed class CryptoOperations(AccessGuard guard, IOptions<CryptoOptions> options)
{
    internal const string NotKeyStore = "this mount is not a key store (use a local-keyring, vault-transit or aws-kms mount for encryption)";

    private readonly int _maxPlaintextBytes = options.Value.MaxPlaintextBytes;

    /// <summary>Encrypts a small value under the latest version of the key.</summary>
    public Task<SealedResult> EncryptAsync(AccessContext access, string keyPath, ReadOnlyMemory<byte> plaintext,
        IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.Encrypt, keyPath, (this, plaintext, context), static async (attempt, state, ct) =>
        {
            var (self, plaintext, context) = state;
            var target = self.Authorize(attempt, Capability.Encrypt);
            if (plaintext.Length > self._maxPlaintextBytes)
            {
                throw new BrokerException(BrokerErrorKind.ResourceExhausted,
                    $"plaintext is {plaintext.Length} bytes; the limit per call is {self._maxPlaintextBytes}: encrypt large data locally under a data key from GenerateDataKey");
            }
            CryptoContext.Validate(context);
            var header = new CiphertextHeader(CiphertextKind.Value, target.Mount.Prefix, target.Name);
            var sealedValue = await target.Capability.EncryptAsync(target.Name, CryptoContext.Bind(header, context), plaintext, ct).ConfigureAwait(false);
            attempt.Version = sealedValue.Version;
            return new SealedResult(header.Seal(sealedValue), header.KeyPath, sealedValue.Version);
        }, cancellationToken);

    /// <summary>Decrypts a value; the ciphertext names its key.</summary>
    public Task<OpenedResult> DecryptAsync(AccessContext access, string keyPath, ReadOnlyMemory<byte> ciphertext,
        IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
        OpenAsync(access, AuditActions.Decrypt, Capability.Decrypt, CiphertextKind.Value, keyPath, ciphertext, context, cancellationToken);

    /// <summary>A fresh 256-bit data key, in plaintext and wrapped under the latest version of the key.</summary>
    public Task<DataKeyResult> GenerateDataKeyAsync(AccessContext access, string keyPath, IReadOnlyDictionary<string, string> context,
        CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.GenerateDataKey, keyPath, (this, context), static async (attempt, state, ct) =>
        {
            var (self, context) = state;
            var target = self.Authorize(attempt, Capability.DataKey);
            CryptoContext.Validate(context);
            var header = new CiphertextHeader(CiphertextKind.DataKey, target.Mount.Prefix, target.Name);
            var dataKey = await target.Capability.GenerateDataKeyAsync(target.Name, CryptoContext.Bind(header, context), ct).ConfigureAwait(false);
            attempt.Version = dataKey.Wrapped.Version;
            return new DataKeyResult(dataKey.PlaintextKey, header.Seal(dataKey.Wrapped), header.KeyPath, dataKey.Wrapped.Version);
        }, cancellationToken);

    /// <summary>Unwraps a data key from GenerateDataKey.</summary>
    public Task<OpenedResult> DecryptDataKeyAsync(AccessContext access, string keyPath, ReadOnlyMemory<byte> wrappedKey,
        IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
        OpenAsync(access, AuditActions.DecryptDataKey, Capability.DataKey, CiphertextKind.DataKey, keyPath, wrappedKey, context, cancellationToken);

    /// <summary>Re-encrypts a value or wrapped data key under the key's latest version; needs encrypt and decrypt on the key.</summary>
    public Task<SealedResult> RewrapAsync(AccessContext access, string keyPath, ReadOnlyMemory<byte> ciphertext,
        IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.Rewrap, keyPath, (this, ciphertext, context), static async (attempt, state, ct) =>
        {
            var (self, ciphertext, context) = state;
            var (header, stored) = Named(attempt, ciphertext.Span, "ciphertext");
            var target = self.Authorize(attempt, Capability.Decrypt, header);
            self.Authorize(attempt, Capability.Encrypt, header);
            CryptoContext.Validate(context);
            var rewrapped = await target.Capability.RewrapAsync(target.Name, CryptoContext.Bind(header, context), stored, ct).ConfigureAwait(false);
            attempt.Version = rewrapped.Version;
            return new SealedResult(header.Seal(rewrapped), header.KeyPath, rewrapped.Version);
        }, cancellationToken);

    private Task<OpenedResult> OpenAsync(AccessContext access, string action, Capability capability, CiphertextKind kind, string keyPath,
        ReadOnlyMemory<byte> ciphertext, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
        guard.RunAsync(access, action, keyPath, (this, capability, kind, ciphertext, context), static async (attempt, state, ct) =>
        {
            var (self, capability, kind, ciphertext, context) = state;
            var field = kind == CiphertextKind.Value ? "ciphertext" : "wrapped_key";
            var (header, stored) = Named(attempt, ciphertext.Span, field);
            if (header.Kind != kind)
            {
                BrokerException.ThrowInvalidArgument(kind == CiphertextKind.Value
                    ? "ciphertext is a wrapped data key: unwrap it with DecryptDataKey"
                    : "wrapped_key is a ciphertext of a value, not a data key: decrypt it with Decrypt");
            }
            var target = self.Authorize(attempt, capability, header);
            CryptoContext.Validate(context);
            var opened = await target.Capability.DecryptAsync(target.Name, CryptoContext.Bind(header, context), stored, ct).ConfigureAwait(false);
            attempt.Version = opened.Version;
            return new OpenedResult(opened.Plaintext, header.KeyPath, opened.Version);
        }, cancellationToken);

    /// <summary>Reads the ciphertext's header; the attempt (and its audit event) takes the key path it names.</summary>
    private static (CiphertextHeader Header, StoreCiphertext Stored) Named(AccessAttempt attempt, ReadOnlySpan<byte> ciphertext, string field)
    {
        var requested = attempt.Path;
        if (requested.Length > 0)
        {
            LogicalPath.EnsureValid(requested, "key_path");
        }
        var (header, stored) = CiphertextHeader.Open(ciphertext, field);
        if (requested.Length > 0 && !string.Equals(requested, header.KeyPath, StringComparison.Ordinal))
        {
            BrokerException.ThrowInvalidArgument($"{field} was made under another key than key_path names");
        }
        attempt.Path = header.KeyPath;
        attempt.Version = stored.Version;
        return (header, stored);
    }

    private Authorized<IKeyStore> Authorize(AccessAttempt attempt, Capability capability) =>
        guard.Authorize<IKeyStore>(attempt, capability, NotKeyStore);

    /// <summary>Authorizes the key a ciphertext names; its mount must still be mounted at the prefix it names.</summary>
    private Authorized<IKeyStore> Authorize(AccessAttempt attempt, Capability capability, CiphertextHeader header)
    {
        var target = Authorize(attempt, capability);
        if (!string.Equals(target.Mount.Prefix, header.Mount, StringComparison.Ordinal))
        {
            BrokerException.ThrowInvalidArgument("the ciphertext's mount is not configured (its key path now resolves to another mount)");
        }
        return target;
    }
}
