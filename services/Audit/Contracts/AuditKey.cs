using System.Buffers.Binary;
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

    // Keyed once per thread: the one-shot HMACSHA256.HashData and a new AesGcm set up a fresh OpenSSL
    // context on every call, which was a large share of an audited read (docs/benchmarks.md, "Read path").
    private readonly ThreadLocal<IncrementalHash> _hmac;
    private readonly ThreadLocal<AesGcm> _pathSeal;

    // Path seal nonces: a random 4-byte field and a counter from a random 64-bit start, both drawn per
    // instance (NIST SP 800-38D's deterministic construction, with random starts because every broker and
    // the audit service share the key). Unique without a call into the random generator per event.
    private readonly uint _nonceField = BitConverter.ToUInt32(RandomNumberGenerator.GetBytes(sizeof(uint)));
    private readonly ulong _nonceStart = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
    private long _nonceCounter;

    public AuditKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException($"the audit key must be 32 bytes (base64 of 32 random bytes, e.g. `openssl rand -base64 32`); it is {key.Length}");
        }
        _hmacKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, key.ToArray(), 32, info: "secretsbroker audit hmac v1"u8.ToArray());
        _pathSealKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, key.ToArray(), 32, info: "secretsbroker audit path seal v1"u8.ToArray());
        _hmac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _hmacKey));
        _pathSeal = new ThreadLocal<AesGcm>(() => new AesGcm(_pathSealKey, TagSize));
    }

    /// <summary>Why <paramref name="base64"/> is not a usable audit key, or null when it is (the one check brokers and the audit service share).</summary>
    public static string? Problem(string? base64)
    {
        try
        {
            _ = FromBase64(base64);
            return null;
        }
        catch (ArgumentException e)
        {
            // The message never contains the key itself.
            return e.Message;
        }
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
    public string Hmac(ReadOnlySpan<char> value)
    {
        var hmac = _hmac.Value!;
        if (value.Length <= 256)
        {
            Span<byte> utf8 = stackalloc byte[256 * 3];
            hmac.AppendData(utf8[..Encoding.UTF8.GetBytes(value, utf8)]);
        }
        else
        {
            hmac.AppendData(Encoding.UTF8.GetBytes(value.ToString()));
        }
        Span<byte> hash = stackalloc byte[32];
        hmac.GetHashAndReset(hash);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>The HMAC of every segment prefix of a path, shortest first, as <see cref="AuditEvent.PathPrefixHmacs"/> holds them.</summary>
    public string[] PathPrefixHmacs(string path)
    {
        var hmacs = new List<string>(4);
        for (var slash = path.IndexOf('/'); slash > 0; slash = path.IndexOf('/', slash + 1))
        {
            hmacs.Add(Hmac(path.AsSpan(0, slash)));
        }
        hmacs.Add(Hmac(path));
        return [.. hmacs];
    }

    /// <summary>
    /// Moves <see cref="AuditEvent.Path"/> into <see cref="AuditEvent.SealedPath"/> (AES-256-GCM, event id as
    /// associated data) and <see cref="AuditEvent.PathPrefixHmacs"/> (one HMAC per segment prefix;
    /// <paramref name="prefixHmacs"/> when the caller already has <see cref="PathPrefixHmacs"/> of the path).
    /// </summary>
    public void SealPath(AuditEvent auditEvent, IEnumerable<string>? prefixHmacs = null)
    {
        var path = auditEvent.Path;
        auditEvent.Path = "";
        auditEvent.PathPrefixHmacs.Clear();
        if (path.Length == 0)
        {
            auditEvent.SealedPath = ByteString.Empty;
            return;
        }
        auditEvent.PathPrefixHmacs.Add(prefixHmacs ?? PathPrefixHmacs(path));

        // The sealed bytes are the only allocation: plaintext and associated data are encoded on the stack when short.
        var plaintextLength = Encoding.UTF8.GetByteCount(path);
        var plaintext = plaintextLength <= 1024 ? stackalloc byte[plaintextLength] : new byte[plaintextLength];
        Encoding.UTF8.GetBytes(path, plaintext);
        var idLength = Encoding.UTF8.GetByteCount(auditEvent.Id);
        var associatedData = idLength <= 256 ? stackalloc byte[idLength] : new byte[idLength];
        Encoding.UTF8.GetBytes(auditEvent.Id, associatedData);
        var sealedBytes = new byte[NonceSize + plaintextLength + TagSize];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        BinaryPrimitives.WriteUInt32BigEndian(nonce, _nonceField);
        BinaryPrimitives.WriteUInt64BigEndian(nonce[sizeof(uint)..], unchecked(_nonceStart + (ulong)Interlocked.Increment(ref _nonceCounter)));
        _pathSeal.Value!.Encrypt(nonce, plaintext, sealedBytes.AsSpan(NonceSize, plaintextLength), sealedBytes.AsSpan(NonceSize + plaintextLength),
            associatedData);
        // The array is not kept or changed after this, so the message may wrap it instead of copying it.
        auditEvent.SealedPath = UnsafeByteOperations.UnsafeWrap(sealedBytes);
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
            _pathSeal.Value!.Decrypt(sealedBytes[..NonceSize], sealedBytes[NonceSize..^TagSize], sealedBytes[^TagSize..], plaintext,
                Encoding.UTF8.GetBytes(auditEvent.Id));
            return Encoding.UTF8.GetString(plaintext);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }
}
