using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Mount type <c>vault-transit</c>: Vault's transit engine holds the keys. The store ciphertext is transit's own
/// <c>vault:v&lt;N&gt;:&lt;base64&gt;</c> string (UTF-8), so a value can also be decrypted with Vault directly. The broker's
/// canonical context bytes go as transit's <c>context</c>, which only a derived key binds (sdk/helper/keysutil/policy.go,
/// DeriveKey: a non-derived key ignores it), so keys must be created with <c>derived=true</c>; the broker reads each key's
/// policy once and refuses non-derived keys (FAILED_PRECONDITION) rather than ignore the caller's context.
/// </summary>
public sealed class VaultTransitBackend(VaultClient client, string enginePath, string mount) : IKeyStore
{
    private readonly ConcurrentDictionary<string, bool> _derivedKeys = new(StringComparer.Ordinal);

    public async Task<StoreCiphertext> EncryptAsync(string key, KeyStoreInput input, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        await EnsureDerivedAsync(key, cancellationToken).ConfigureAwait(false);
        var data = await client.TransitWriteAsync(enginePath, "encrypt", key,
            new TransitRequest { Plaintext = Convert.ToBase64String(plaintext.Span), Context = Convert.ToBase64String(input.Aad.Span) }, mount, cancellationToken)
            .ConfigureAwait(false);
        return Stored(data);
    }

    public async Task<StorePlaintext> DecryptAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken)
    {
        await EnsureDerivedAsync(key, cancellationToken).ConfigureAwait(false);
        var data = await client.TransitWriteAsync(enginePath, "decrypt", key,
            new TransitRequest { Ciphertext = TransitText(ciphertext), Context = Convert.ToBase64String(input.Aad.Span) }, mount, cancellationToken)
            .ConfigureAwait(false);
        return new StorePlaintext(ciphertext.Version, Decode(data.Plaintext));
    }

    public async Task<StoreDataKey> GenerateDataKeyAsync(string key, KeyStoreInput input, CancellationToken cancellationToken)
    {
        await EnsureDerivedAsync(key, cancellationToken).ConfigureAwait(false);
        var data = await client.TransitWriteAsync(enginePath, "datakey/plaintext", key,
            new TransitRequest { Context = Convert.ToBase64String(input.Aad.Span), Bits = 256 }, mount, cancellationToken).ConfigureAwait(false);
        var plaintextKey = Decode(data.Plaintext);
        if (plaintextKey.Length != 32)
        {
            BrokerException.ThrowUnavailable("vault returned a data key that is not 256 bits");
        }
        return new StoreDataKey(plaintextKey, Stored(data));
    }

    public async Task<StoreCiphertext> RewrapAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken)
    {
        await EnsureDerivedAsync(key, cancellationToken).ConfigureAwait(false);
        var data = await client.TransitWriteAsync(enginePath, "rewrap", key,
            new TransitRequest { Ciphertext = TransitText(ciphertext), Context = Convert.ToBase64String(input.Aad.Span) }, mount, cancellationToken)
            .ConfigureAwait(false);
        return Stored(data);
    }

    /// <summary>Whether the key derives per context; read once per key (derivation cannot be changed after creation).</summary>
    private async Task EnsureDerivedAsync(string key, CancellationToken cancellationToken)
    {
        if (_derivedKeys.ContainsKey(key))
        {
            return;
        }
        var policy = await client.TransitReadKeyAsync(enginePath, key, mount, cancellationToken).ConfigureAwait(false);
        if (!policy.Derived)
        {
            BrokerException.ThrowFailedPrecondition(
                "this transit key is not derived, so Vault would ignore the context: create transit keys for the broker with derived=true");
        }
        _derivedKeys[key] = true;
    }

    /// <summary>The transit ciphertext, checked against the version the broker's header names.</summary>
    private static string TransitText(StoreCiphertext ciphertext)
    {
        var text = Encoding.UTF8.GetString(ciphertext.Blob);
        if (!text.StartsWith($"vault:v{ciphertext.Version}:", StringComparison.Ordinal))
        {
            BrokerException.ThrowInvalidArgument("the ciphertext's key version does not match its transit ciphertext");
        }
        return text;
    }

    private static StoreCiphertext Stored(TransitData data)
    {
        if (data.Ciphertext is not { } text || !text.StartsWith("vault:v", StringComparison.Ordinal))
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a transit answer without a ciphertext");
        }
        // "vault:v<N>:": the version from the ciphertext itself (policy.go getVersionPrefix), which is what decrypt reads.
        var end = text.IndexOf(':', 7);
        var version = end > 7 ? text[7..end] : "";
        if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a transit ciphertext without a version");
        }
        return new StoreCiphertext(version, Encoding.UTF8.GetBytes(text));
    }

    private static byte[] Decode(string? base64)
    {
        try
        {
            return Convert.FromBase64String(base64 ?? throw new FormatException());
        }
        catch (FormatException)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a transit answer without a readable plaintext");
        }
    }
}

/// <summary>
/// Mount type <c>vault-transit</c>. Settings: <c>Connection</c> (default "default") and <c>EnginePath</c> (default "transit").
/// </summary>
public sealed class VaultTransitBackendFactory(VaultConnections connections) : ISecretBackendFactory
{
    public string MountType => "vault-transit";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var enginePath = (settings["EnginePath"] ?? "transit").Trim('/');
        VaultMountValidation.EnsureEnginePath(enginePath, MountType);
        return new VaultTransitBackend(connections.Get(settings["Connection"] ?? "default"), enginePath, mount.Prefix);
    }
}
