using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Contracts;

/// <summary>
/// The deployment's audit key (32 random bytes, base64 in configuration, the same for every broker and
/// the audit service) and what it is used for. Separate subkeys are derived with HKDF-SHA256 so that the
/// HMACs operators search by never reveal the key that seals paths.
/// </summary>
public sealed class AuditKey
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _hmacKey;
    private readonly byte[] _pathSealKey;

    public AuditKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException($"the audit key must be 32 bytes (base64 of 32 random bytes, e.g. `openssl rand -base64 32`); it is {key.Length}");
        }
        _hmacKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, key.ToArray(), 32, info: "secretsbroker audit hmac v1"u8.ToArray());
        _pathSealKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, key.ToArray(), 32, info: "secretsbroker audit path seal v1"u8.ToArray());
    }

    /// <summary>Parses the configured base64 key; throws <see cref="ArgumentException"/> with a clear message when it is not 32 bytes.</summary>
    public static AuditKey FromBase64(string? base64)
    {
        if (string.IsNullOrWhiteSpace(base64))
        {
            throw new ArgumentException("the audit key is not configured (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)");
        }
        try
        {
            return new AuditKey(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            throw new ArgumentException("the audit key is not valid base64");
        }
    }

    /// <summary>HMAC-SHA256 (lower-case hex) of a token, lease id or path prefix.</summary>
    public string Hmac(string value) => Convert.ToHexStringLower(HMACSHA256.HashData(_hmacKey, Encoding.UTF8.GetBytes(value)));

    /// <summary>
    /// Moves <see cref="AuditEvent.Path"/> into <see cref="AuditEvent.SealedPath"/> (AES-256-GCM, event id as
    /// associated data) and <see cref="AuditEvent.PathPrefixHmacs"/> (one HMAC per segment prefix).
    /// </summary>
    public void SealPath(AuditEvent auditEvent)
    {
        var path = auditEvent.Path;
        auditEvent.Path = "";
        auditEvent.PathPrefixHmacs.Clear();
        if (path.Length == 0)
        {
            auditEvent.SealedPath = ByteString.Empty;
            return;
        }
        for (var slash = path.IndexOf('/'); slash > 0; slash = path.IndexOf('/', slash + 1))
        {
            auditEvent.PathPrefixHmacs.Add(Hmac(path[..slash]));
        }
        auditEvent.PathPrefixHmacs.Add(Hmac(path));

        var plaintext = Encoding.UTF8.GetBytes(path);
        var sealedBytes = new byte[NonceSize + plaintext.Length + TagSize];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_pathSealKey, TagSize);
        aes.Encrypt(nonce, plaintext, sealedBytes.AsSpan(NonceSize, plaintext.Length), sealedBytes.AsSpan(NonceSize + plaintext.Length),
            Encoding.UTF8.GetBytes(auditEvent.Id));
        auditEvent.SealedPath = ByteString.CopyFrom(sealedBytes);
    }

    /// <summary>The path sealed in <paramref name="auditEvent"/>, or null when it has none or it does not authenticate under this key.</summary>
    public string? OpenPath(AuditEvent auditEvent)
    {
        var sealedBytes = auditEvent.SealedPath.Span;
        if (sealedBytes.Length < NonceSize + TagSize)
        {
            return null;
        }
        var plaintext = new byte[sealedBytes.Length - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(_pathSealKey, TagSize);
            aes.Decrypt(sealedBytes[..NonceSize], sealedBytes[NonceSize..^TagSize], sealedBytes[^TagSize..], plaintext,
                Encoding.UTF8.GetBytes(auditEvent.Id));
            return Encoding.UTF8.GetString(plaintext);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }
}
