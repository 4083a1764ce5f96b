using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>One transit key (sdk/helper/keysutil/policy.go, Policy): aes256-gcm96 versions, optionally derived per context.</summary>
public sealed class TransitKey
{
    public bool Derived { get; init; }
    public bool Exportable { get; set; }
    public bool DeletionAllowed { get; set; }
    public List<(byte[] Key, DateTimeOffset Created)> Versions { get; } = [];
    public int MinDecryptionVersion { get; set; } = 1;
    public int MinEncryptionVersion { get; set; }
    public int LatestVersion => Versions.Count;
}

/// <summary>
/// The transit secrets engine, from Vault's source: builtin/logical/transit (path_keys.go, path_config.go, path_rotate.go,
/// path_encrypt.go, path_decrypt.go, path_datakey.go, path_rewrap.go) and sdk/helper/keysutil/policy.go (Encrypt, Decrypt,
/// DeriveKey). Ciphertexts are <c>vault:v&lt;N&gt;:</c> + base64(12-byte random nonce | AES-256-GCM ciphertext and tag), no AAD;
/// derived keys use HKDF-SHA256 (policy.go Kdf_hkdf_sha256: hkdf.New(sha256.New, key, nil, context)) and require a context.
/// User errors (errutil.UserError, logical.ErrInvalidRequest) answer 400 with Vault's text. Not emulated: convergent
/// encryption, key types other than aes256-gcm96, batch_input, export and backup (refused with 400 saying so).
/// </summary>
public sealed partial class VaultState
{
    private const string KeyNotFound = "encryption key not found";

    private VaultResult Transit(VaultRequest r, NamespaceState ns, DynamicEngine engine, string rest, string path)
    {
        var write = r.Method is "POST" or "PUT";
        var keys = engine.TransitKeys;
        switch (rest.Split('/'))
        {
            case ["keys", var name] when r.Method == "GET":
                Authorize(r, ns, path, "read");
                return keys.TryGetValue(name, out var read) ? Envelope(KeyData(name, read)) : VaultResult.Error(404);
            case ["keys", var name] when write:
                Authorize(r, ns, path, "update");
                return CreateTransitKey(r, keys, name);
            case ["keys", var name] when r.Method == "DELETE":
                Authorize(r, ns, path, "delete");
                if (!keys.TryGetValue(name, out var doomed))
                {
                    return VaultResult.BadRequest($"error deleting policy {name}: key not found");
                }
                if (!doomed.DeletionAllowed)
                {
                    return VaultResult.BadRequest($"error deleting policy {name}: deletion is not allowed for this key");
                }
                keys.Remove(name);
                return VaultResult.NoContent;
            case ["keys", var name, "rotate"] when write:
                Authorize(r, ns, path, "update");
                if (!keys.TryGetValue(name, out var rotated))
                {
                    return VaultResult.BadRequest("key not found");
                }
                rotated.Versions.Add((RandomNumberGenerator.GetBytes(32), Now));
                return Envelope(KeyData(name, rotated));
            case ["keys", var name, "config"] when write:
                Authorize(r, ns, path, "update");
                return ConfigureTransitKey(r, keys, name);
            case ["encrypt", var name] when write:
                // path_encrypt.go pathEncryptExistenceCheck: a missing key makes this a create (upsert) operation.
                Authorize(r, ns, path, keys.ContainsKey(name) ? "update" : "create");
                return TransitEncrypt(r, keys, name);
            case ["decrypt", var name] when write:
                Authorize(r, ns, path, "update");
                return TransitDecrypt(r, keys, name);
            case ["datakey", var kind, var name] when write:
                Authorize(r, ns, path, "update");
                return TransitDataKey(r, keys, kind, name);
            case ["rewrap", var name] when write:
                Authorize(r, ns, path, "update");
                return TransitRewrap(r, keys, name);
            case ["keys", _] or ["keys", _, "rotate" or "config"] or ["encrypt" or "decrypt" or "rewrap", _] or ["datakey", _, _]:
                return VaultResult.Error(405, "unsupported operation");
        }
        return VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found.");
    }

    private VaultResult CreateTransitKey(VaultRequest r, Dictionary<string, TransitKey> keys, string name)
    {
        var type = r.Param("type") ?? "aes256-gcm96";
        if (type != "aes256-gcm96")
        {
            return VaultResult.BadRequest($"the emulator implements key type aes256-gcm96 only, not {type}");
        }
        var derived = Flag(r, "derived") ?? false;
        if (Flag(r, "convergent_encryption") == true)
        {
            // path_keys.go pathPolicyWrite.
            return VaultResult.BadRequest(derived ? "the emulator does not implement convergent encryption" : "convergent encryption requires derivation to be enabled");
        }
        if (keys.TryGetValue(name, out var existing))
        {
            return Envelope(KeyData(name, existing), warnings: [$"key {name} already existed"]);
        }
        var key = new TransitKey { Derived = derived, Exportable = Flag(r, "exportable") ?? false };
        key.Versions.Add((RandomNumberGenerator.GetBytes(32), Now));
        keys[name] = key;
        return Envelope(KeyData(name, key));
    }

    private VaultResult ConfigureTransitKey(VaultRequest r, Dictionary<string, TransitKey> keys, string name)
    {
        if (!keys.TryGetValue(name, out var key))
        {
            return VaultResult.BadRequest($"no existing key named {name} could be found");
        }
        var warnings = new List<string>();
        if (Number(r, "min_decryption_version") is { } minDecryption)
        {
            if (minDecryption < 0)
            {
                return VaultResult.BadRequest("min decryption version cannot be negative");
            }
            if (minDecryption == 0)
            {
                minDecryption = 1;
                warnings.Add("since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1");
            }
            if (minDecryption > key.LatestVersion)
            {
                return VaultResult.BadRequest($"cannot set min decryption version of {minDecryption}, latest key version is {key.LatestVersion}");
            }
            key.MinDecryptionVersion = minDecryption;
        }
        if (Number(r, "min_encryption_version") is { } minEncryption)
        {
            if (minEncryption < 0)
            {
                return VaultResult.BadRequest("min encryption version cannot be negative");
            }
            if (minEncryption > key.LatestVersion)
            {
                return VaultResult.BadRequest($"cannot set min encryption version of {minEncryption}, latest key version is {key.LatestVersion}");
            }
            key.MinEncryptionVersion = minEncryption;
        }
        if (key.MinEncryptionVersion > 0 && key.MinEncryptionVersion < key.MinDecryptionVersion)
        {
            return VaultResult.BadRequest("min decryption version should not be less then min available version");
        }
        if (Flag(r, "deletion_allowed") is { } deletionAllowed)
        {
            key.DeletionAllowed = deletionAllowed;
        }
        if (Flag(r, "exportable") is { } exportable)
        {
            key.Exportable = key.Exportable || exportable;
        }
        return Envelope(KeyData(name, key), warnings: [.. warnings]);
    }

    private VaultResult TransitEncrypt(VaultRequest r, Dictionary<string, TransitKey> keys, string name)
    {
        if (r.Body?["batch_input"] is not null)
        {
            return VaultResult.BadRequest("the emulator does not implement batch_input");
        }
        if (r.Param("plaintext") is not { } plaintext)
        {
            return VaultResult.BadRequest("missing plaintext to encrypt");
        }
        var context = r.Param("context") ?? "";
        if (!keys.TryGetValue(name, out var key))
        {
            // Upsert: the key is created, derived when a context was given (path_encrypt.go, polReq.Derived = contextSet).
            key = keys[name] = new TransitKey { Derived = context.Length > 0 };
            key.Versions.Add((RandomNumberGenerator.GetBytes(32), Now));
        }
        var (ciphertext, version, error) = SealTransit(key, Number(r, "key_version") ?? 0, context, plaintext);
        return error is not null ? VaultResult.BadRequest(error) : Envelope(new JsonObject { ["ciphertext"] = ciphertext, ["key_version"] = version });
    }

    private VaultResult TransitDecrypt(VaultRequest r, Dictionary<string, TransitKey> keys, string name)
    {
        if (r.Param("ciphertext") is not { } ciphertext)
        {
            return VaultResult.BadRequest("missing ciphertext to decrypt");
        }
        if (!keys.TryGetValue(name, out var key))
        {
            return VaultResult.BadRequest(KeyNotFound);
        }
        var (plaintext, error) = OpenTransit(key, r.Param("context") ?? "", ciphertext);
        return error is not null ? VaultResult.BadRequest(error) : Envelope(new JsonObject { ["plaintext"] = plaintext });
    }

    private VaultResult TransitDataKey(VaultRequest r, Dictionary<string, TransitKey> keys, string kind, string name)
    {
        if (kind is not ("plaintext" or "wrapped"))
        {
            return VaultResult.BadRequest("Invalid path, must be 'plaintext' or 'wrapped'");
        }
        var context = r.Param("context") ?? "";
        if (context.Length > 0 && !TryBase64(context, out _))
        {
            return VaultResult.BadRequest("failed to base64-decode context");
        }
        if (!keys.TryGetValue(name, out var key))
        {
            return VaultResult.BadRequest(KeyNotFound);
        }
        var size = (Number(r, "bits") ?? 256) switch { 512 => 64, 256 => 32, 128 => 16, _ => 0 };
        if (size == 0)
        {
            return VaultResult.BadRequest("invalid bit length");
        }
        var dataKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(size));
        var (ciphertext, version, error) = SealTransit(key, Number(r, "key_version") ?? 0, context, dataKey);
        if (error is not null)
        {
            return VaultResult.BadRequest(error);
        }
        var data = new JsonObject { ["ciphertext"] = ciphertext, ["key_version"] = version };
        if (kind == "plaintext")
        {
            data["plaintext"] = dataKey;
        }
        return Envelope(data);
    }

    private VaultResult TransitRewrap(VaultRequest r, Dictionary<string, TransitKey> keys, string name)
    {
        if (r.Param("ciphertext") is not { } ciphertext)
        {
            return VaultResult.BadRequest("missing ciphertext to decrypt");
        }
        if (!keys.TryGetValue(name, out var key))
        {
            return VaultResult.BadRequest(KeyNotFound);
        }
        var context = r.Param("context") ?? "";
        var (plaintext, openError) = OpenTransit(key, context, ciphertext);
        if (openError is not null)
        {
            return VaultResult.BadRequest(openError);
        }
        var (rewrapped, version, error) = SealTransit(key, Number(r, "key_version") ?? 0, context, plaintext!);
        return error is not null ? VaultResult.BadRequest(error) : Envelope(new JsonObject { ["ciphertext"] = rewrapped, ["key_version"] = version });
    }

    /// <summary>policy.go Encrypt: version checks, then AES-256-GCM under the (derived) key with a random 12-byte nonce in front.</summary>
    private static (string? Ciphertext, int Version, string? Error) SealTransit(TransitKey key, int version, string context, string plaintextBase64)
    {
        if (!TryBase64(plaintextBase64, out var plaintext))
        {
            return (null, 0, "illegal base64 data at input byte 0");
        }
        switch (version)
        {
            case 0:
                version = key.LatestVersion;
                break;
            case < 0:
                return (null, 0, "requested version for encryption is negative");
            case var v when v > key.LatestVersion:
                return (null, 0, "requested version for encryption is higher than the latest key version");
            case var v when v < key.MinEncryptionVersion:
                return (null, 0, "requested version for encryption is less than the minimum encryption key version");
        }
        var (encryptionKey, error) = DeriveTransitKey(key, context, version);
        if (error is not null)
        {
            return (null, 0, error);
        }
        var sealedBytes = new byte[12 + plaintext.Length + 16];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, 12));
        using var aes = new AesGcm(encryptionKey!, 16);
        aes.Encrypt(sealedBytes.AsSpan(0, 12), plaintext, sealedBytes.AsSpan(12, plaintext.Length), sealedBytes.AsSpan(12 + plaintext.Length));
        return ($"vault:v{version}:{Convert.ToBase64String(sealedBytes)}", version, null);
    }

    /// <summary>policy.go Decrypt: prefix, version, minimum decryption version, base64, then AES-GCM open.</summary>
    private static (string? PlaintextBase64, string? Error) OpenTransit(TransitKey key, string context, string ciphertext)
    {
        if (!ciphertext.StartsWith("vault:v", StringComparison.Ordinal))
        {
            return (null, "invalid ciphertext: no prefix");
        }
        var parts = ciphertext["vault:v".Length..].Split(':', 2);
        if (parts.Length != 2)
        {
            return (null, "invalid ciphertext: wrong number of fields");
        }
        if (!int.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var version))
        {
            return (null, "invalid ciphertext: version number could not be decoded");
        }
        version = version == 0 ? 1 : version;
        if (version > key.LatestVersion)
        {
            return (null, "invalid ciphertext: version is too new");
        }
        if (version < key.MinDecryptionVersion)
        {
            return (null, "ciphertext or signature version is disallowed by policy (too old)");
        }
        if (!TryBase64(parts[1], out var decoded))
        {
            return (null, "invalid ciphertext: could not decode base64");
        }
        var (encryptionKey, error) = DeriveTransitKey(key, context, version);
        if (error is not null)
        {
            return (null, error);
        }
        if (decoded.Length < 12 + 16)
        {
            return (null, "invalid ciphertext length");
        }
        var plaintext = new byte[decoded.Length - 28];
        using var aes = new AesGcm(encryptionKey!, 16);
        try
        {
            aes.Decrypt(decoded.AsSpan(0, 12), decoded.AsSpan(12, plaintext.Length), decoded.AsSpan(12 + plaintext.Length), plaintext);
        }
        catch (AuthenticationTagMismatchException)
        {
            return (null, "invalid ciphertext: unable to decrypt");
        }
        return (Convert.ToBase64String(plaintext), null);
    }

    /// <summary>policy.go DeriveKey: the version's key as it is, or HKDF-SHA256(key, salt nil, info context) for derived keys.</summary>
    private static (byte[]? Key, string? Error) DeriveTransitKey(TransitKey key, string contextBase64, int version)
    {
        var material = key.Versions[version - 1].Key;
        if (!key.Derived)
        {
            return (material, null);
        }
        if (!TryBase64(contextBase64, out var context))
        {
            return (null, "failed to base64-decode context");
        }
        if (context.Length == 0)
        {
            return (null, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key");
        }
        return (HKDF.DeriveKey(HashAlgorithmName.SHA256, material, 32, salt: [], info: context), null);
    }

    /// <summary>path_keys.go formatKeyPolicy for a symmetric key: versions with their creation times in unix seconds.</summary>
    private static JsonObject KeyData(string name, TransitKey key)
    {
        var versions = new JsonObject();
        for (var i = 0; i < key.Versions.Count; i++)
        {
            versions[(i + 1).ToString(CultureInfo.InvariantCulture)] = key.Versions[i].Created.ToUnixTimeSeconds();
        }
        var data = new JsonObject
        {
            ["name"] = name,
            ["type"] = "aes256-gcm96",
            ["derived"] = key.Derived,
            ["exportable"] = key.Exportable,
            ["allow_plaintext_backup"] = false,
            ["deletion_allowed"] = key.DeletionAllowed,
            ["keys"] = versions,
            ["latest_version"] = key.LatestVersion,
            ["min_available_version"] = 0,
            ["min_decryption_version"] = key.MinDecryptionVersion,
            ["min_encryption_version"] = key.MinEncryptionVersion,
            ["supports_encryption"] = true,
            ["supports_decryption"] = true,
            ["supports_derivation"] = true,
            ["supports_signing"] = false,
            ["imported_key"] = false,
            ["auto_rotate_period"] = 0,
        };
        if (key.Derived)
        {
            data["kdf"] = "hkdf_sha256";
            data["convergent_encryption"] = false;
        }
        return data;
    }

    private static bool? Flag(VaultRequest r, string name) => r.Param(name) is { } text ? bool.Parse(text) : null;

    private static int? Number(VaultRequest r, string name) => r.Param(name) is { Length: > 0 } text ? int.Parse(text, CultureInfo.InvariantCulture) : null;

    private static bool TryBase64(string text, out byte[] bytes)
    {
        bytes = new byte[text.Length];
        if (Convert.TryFromBase64String(text, bytes, out var written))
        {
            bytes = bytes[..written];
            return true;
        }
        bytes = [];
        return false;
    }
}
