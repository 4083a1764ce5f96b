using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Caching;

/// <summary>Why a sealed value was refused. Never carries the value.</summary>
public enum UnsealFailure
{
    None,
    Malformed,
    UnknownKey,
    AuthenticationFailed,
}

/// <summary>
/// AES-256-GCM sealing of cache values and HMAC naming of cache keys.
/// Envelope: <c>[format=1][id length][key id ASCII][12-byte nonce][16-byte tag][ciphertext]</c>; the
/// associated data is the envelope header followed by the Redis key, so a value moved to another key,
/// re-labelled with another key id or altered in any byte fails authentication.
/// </summary>
public sealed class CacheKeyRing : IDisposable
{
    private const byte Format = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly Dictionary<string, byte[]> _keys;
    private readonly string _activeId;
    private readonly byte[] _nameKey;

    // Keyed once per thread: HMACSHA256.HashData and a new AesGcm set up a fresh OpenSSL context per
    // call, and every read (L1 hits too) names its entry with an HMAC (docs/benchmarks.md, "Read path").
    private readonly ThreadLocal<IncrementalHash> _nameMac;
    private readonly ThreadLocal<Dictionary<string, AesGcm>> _ciphers = new(() => new Dictionary<string, AesGcm>(StringComparer.Ordinal));
    private readonly ConcurrentDictionary<string, string[]> _mountTags = new(StringComparer.Ordinal);

    // Entry names depend on the request alone and workloads read the same secrets again and again, so the
    // HMAC of every read (L1 hits too) is remembered; bounded, so unknown names cost recomputation, not memory.
    // As many as L1 holds: with fewer, reads spread over more secrets than this recompute the name and keep compacting.
    private readonly MemoryCache _entryKeys;

    public CacheKeyRing(IOptions<CacheOptions> options)
    {
        _entryKeys = new(new MemoryCacheOptions { SizeLimit = options.Value.L1MaxEntries });
        var encryption = options.Value.Encryption;
        _keys = encryption.Keys
            .Where(k => k.Id is not null && CacheOptionsValidator.IsKey(k.Secret))
            .ToDictionary(k => k.Id!, k => Convert.FromBase64String(k.Secret!.Trim()), StringComparer.Ordinal);
        _activeId = encryption.Keys.FirstOrDefault(k => k.Active)?.Id ?? "";
        // Without Redis, nothing leaves the process; a random naming key per process is enough then.
        _nameKey = CacheOptionsValidator.IsKey(encryption.NameKey) ? Convert.FromBase64String(encryption.NameKey!.Trim()) : RandomNumberGenerator.GetBytes(32);
        _nameMac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _nameKey));
    }

    /// <summary>The cache key of one read: an HMAC of mount, name and version selector, so no path is readable in Redis.</summary>
    public string EntryKey(MountDefinition mount, string name, VersionSelector selector)
    {
        var text = $"entry\0{mount.Prefix}\0{name}\0{selector.Version}\0{selector.Stage}";
        if (!_entryKeys.TryGetValue(text, out string? key))
        {
            key = "s:" + Mac(text);
            _entryKeys.Set(text, key, new MemoryCacheEntryOptions { Size = 1 });
        }
        return key!;
    }

    /// <summary>The tag every entry of a mount carries, to invalidate the whole mount at once.</summary>
    public string MountTag(MountDefinition mount) => MountTags(mount)[0];

    /// <summary>The tags of an entry of this mount (just its mount tag), as one array per mount for every read to pass.</summary>
    public string[] MountTags(MountDefinition mount) =>
        _mountTags.GetOrAdd(mount.Prefix, static (prefix, ring) => ["m:" + ring.Mac($"mount\0{prefix}")[..22]], this);

    /// <summary>
    /// Keys for another purpose than sealing cache values (page tokens, ...), derived from each ring key with HKDF-SHA256
    /// and <paramref name="purpose"/> as info, under the same ids so they rotate with the ring. A ring key itself is never
    /// used for two purposes. Empty (and no active id) when no ring key is configured.
    /// </summary>
    public DerivedKeys DeriveKeys(string purpose)
    {
        var info = Encoding.UTF8.GetBytes(purpose);
        return new DerivedKeys(_keys.Count == 0 ? null : _activeId,
            _keys.ToDictionary(k => k.Key, k => HKDF.DeriveKey(HashAlgorithmName.SHA256, k.Value, 32, info: info), StringComparer.Ordinal));
    }

    public byte[] Seal(string redisKey, ReadOnlySpan<byte> plaintext)
    {
        var key = _keys[_activeId];
        var idBytes = Encoding.ASCII.GetBytes(_activeId);
        var headerLength = 2 + idBytes.Length;
        var envelope = new byte[headerLength + NonceSize + TagSize + plaintext.Length];
        envelope[0] = Format;
        envelope[1] = (byte)idBytes.Length;
        idBytes.CopyTo(envelope, 2);
        var nonce = envelope.AsSpan(headerLength, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var tag = envelope.AsSpan(headerLength + NonceSize, TagSize);
        var ciphertext = envelope.AsSpan(headerLength + NonceSize + TagSize);
        Cipher(_activeId, key).Encrypt(nonce, plaintext, ciphertext, tag, AssociatedData(envelope.AsSpan(0, headerLength), redisKey));
        return envelope;
    }

    public UnsealFailure TryUnseal(string redisKey, byte[] envelope, out byte[]? plaintext, out string? keyId)
    {
        plaintext = null;
        keyId = null;
        if (envelope.Length < 3 || envelope[0] != Format || envelope[1] is 0 or > 32 || envelope.Length < 2 + envelope[1] + NonceSize + TagSize)
        {
            return UnsealFailure.Malformed;
        }
        var headerLength = 2 + envelope[1];
        keyId = Encoding.ASCII.GetString(envelope, 2, envelope[1]);
        if (!_keys.TryGetValue(keyId, out var key))
        {
            return UnsealFailure.UnknownKey;
        }
        var nonce = envelope.AsSpan(headerLength, NonceSize);
        var tag = envelope.AsSpan(headerLength + NonceSize, TagSize);
        var ciphertext = envelope.AsSpan(headerLength + NonceSize + TagSize);
        var output = new byte[ciphertext.Length];
        try
        {
            Cipher(keyId, key).Decrypt(nonce, ciphertext, tag, output, AssociatedData(envelope.AsSpan(0, headerLength), redisKey));
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(output);
            return UnsealFailure.AuthenticationFailed;
        }
        plaintext = output;
        return UnsealFailure.None;
    }

    private static byte[] AssociatedData(ReadOnlySpan<byte> header, string redisKey)
    {
        var keyBytes = Encoding.UTF8.GetBytes(redisKey);
        var data = new byte[4 + header.Length + keyBytes.Length];
        BinaryPrimitives.WriteInt32BigEndian(data, header.Length);
        header.CopyTo(data.AsSpan(4));
        keyBytes.CopyTo(data.AsSpan(4 + header.Length));
        return data;
    }

    private AesGcm Cipher(string keyId, byte[] key)
    {
        var ciphers = _ciphers.Value!;
        if (!ciphers.TryGetValue(keyId, out var cipher))
        {
            cipher = new AesGcm(key, TagSize);
            ciphers[keyId] = cipher;
        }
        return cipher;
    }

    private string Mac(string text)
    {
        var mac = _nameMac.Value!;
        if (text.Length <= 1024)
        {
            Span<byte> utf8 = stackalloc byte[1024 * 3];
            mac.AppendData(utf8[..Encoding.UTF8.GetBytes(text, utf8)]);
        }
        else
        {
            mac.AppendData(Encoding.UTF8.GetBytes(text));
        }
        Span<byte> hash = stackalloc byte[32];
        mac.GetHashAndReset(hash);
        return Base64Url.EncodeToString(hash);
    }

    public void Dispose()
    {
        _nameMac.Dispose();
        _ciphers.Dispose();
        _entryKeys.Dispose();
    }
}

/// <summary>Subkeys of the cache key ring for one purpose, by key id; <see cref="ActiveId"/> seals new values.</summary>
public sealed record DerivedKeys(string? ActiveId, IReadOnlyDictionary<string, byte[]> Keys);
