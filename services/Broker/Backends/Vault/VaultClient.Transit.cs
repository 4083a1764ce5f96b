using System.Net;
using System.Net.Http.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>A transit request body (builtin/logical/transit path_encrypt.go, path_decrypt.go, path_datakey.go, path_rewrap.go field names).</summary>
public sealed class TransitRequest
{
    public string? Plaintext { get; set; }
    public string? Ciphertext { get; set; }
    public string? Context { get; set; }
    public int? Bits { get; set; }
}

/// <summary>What transit answers: encrypt/rewrap (ciphertext, key_version), decrypt (plaintext), datakey (all three), keys/NAME (derived).</summary>
public sealed class TransitData
{
    public string? Ciphertext { get; set; }
    public string? Plaintext { get; set; }
    public int KeyVersion { get; set; }
    public bool Derived { get; set; }
    public string? Type { get; set; }
}

public sealed partial class VaultClient
{
    /// <summary>Reads a transit key's policy (<c>GET ENGINE/keys/NAME</c>, path_keys.go pathPolicyRead); NOT_FOUND when it does not exist.</summary>
    public async Task<TransitData> TransitReadKeyAsync(string engine, string key, string mount, CancellationToken cancellationToken)
    {
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Get, $"{Escape(engine)}/keys/{Escape(key)}", null, mount, "transit-key", cancellationToken)
            .ConfigureAwait(false);
        return ReadTransit(status, body, mount, "transit-key");
    }

    /// <summary>Writes to a transit operation path (<c>encrypt/NAME</c>, <c>decrypt/NAME</c>, <c>datakey/plaintext/NAME</c>, <c>rewrap/NAME</c>).</summary>
    public async Task<TransitData> TransitWriteAsync(string engine, string operation, string key, TransitRequest request, string mount,
        CancellationToken cancellationToken)
    {
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Post, $"{Escape(engine)}/{operation}/{Escape(key)}",
            () => JsonContent.Create(request, VaultJsonContext.Default.TransitRequest), mount, "transit-" + operation.Split('/')[0], cancellationToken)
            .ConfigureAwait(false);
        return ReadTransit(status, body, mount, "transit-" + operation.Split('/')[0]);
    }

    private TransitData ReadTransit(HttpStatusCode status, byte[] body, string mount, string operation)
    {
        if (status == HttpStatusCode.BadRequest)
        {
            LogCallFailed(ConnectionName, mount, operation, (int)status);
            ThrowTransit(body);
        }
        return Read(status, body, VaultJsonContext.Default.VaultEnvelopeTransitData, mount, operation).Data
            ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a transit response without data");
    }

    /// <summary>
    /// Transit's user errors are 400s (errutil.UserError, sdk/helper/keysutil/policy.go; "encryption key not found" from the
    /// transit paths). Vault's text is matched, never passed on.
    /// </summary>
    private static void ThrowTransit(byte[] body)
    {
        var errors = VaultErrors.ReadErrors(body);
        bool Has(string phrase) => errors.Any(e => e.Contains(phrase, StringComparison.OrdinalIgnoreCase));
        if (Has("encryption key not found") || Has("no existing key named"))
        {
            BrokerException.ThrowNotFound("key not found");
        }
        if (Has("disallowed by policy (too old)"))
        {
            BrokerException.ThrowFailedPrecondition("the ciphertext's key version is below the key's minimum decryption version");
        }
        if (Has("invalid ciphertext: unable to decrypt") || Has("message authentication failed"))
        {
            BrokerException.ThrowInvalidArgument("the ciphertext does not decrypt under its key with this context (wrong context, or the ciphertext was altered)");
        }
        if (Has("invalid ciphertext") || Has("invalid key version"))
        {
            BrokerException.ThrowInvalidArgument("vault rejected the ciphertext as malformed");
        }
        VaultErrors.Throw(HttpStatusCode.BadRequest, body);
    }
}
