using System.Buffers.Binary;
using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Reading;

/// <summary>
/// Where a listing resumes: the backend cursor that starts a chunk (null for the first), the chunk size it was asked
/// with, and how many entries of that chunk were already handed out or passed over.
/// </summary>
public readonly record struct ListingCursor(string? BackendCursor, int ChunkSize, int Offset);

/// <summary>
/// Sealed ListSecrets page tokens (issue 17, item 2). A token is AES-256-GCM over the <see cref="ListingCursor"/> and its
/// issue time, with the caller's whole identity and the listed prefix as associated data: it reveals nothing (not even a
/// cursor's length, the plaintext is padded), and any change, another caller, another prefix or age beyond
/// <see cref="BrokerOptions.ListPageTokenLifetime"/> makes it INVALID_ARGUMENT with one message.
/// Envelope, base64url: <c>[format=2][id length][key id ASCII][12-byte nonce][16-byte tag][ciphertext]</c>.
/// The key is an HKDF subkey of the cache key ring (shared by replicas, rotating with it); without a ring (development)
/// it is random per process, so tokens then work only on the replica that issued them.
/// </summary>
public sealed partial class ListingPageTokens
{
    public const string Invalid = "invalid page token: pass next_page_token from the previous response unchanged, with the same prefix "
        + "and credentials, before it expires; or start the listing again without one";

    private const string Purpose = "secretsbroker listing page token v1";
    private const string ProcessKeyId = "process";
    private const byte Format = 2;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int FixedSize = sizeof(long) + 3 * sizeof(int) + 1;
    private const int PaddingBlock = 128;
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    private readonly Dictionary<string, byte[]> _keys;
    private readonly string _activeId;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lifetime;

    public ListingPageTokens(CacheKeyRing ring, TimeProvider time, IOptions<BrokerOptions> options, ILogger<ListingPageTokens> logger)
    {
        var derived = ring.DeriveKeys(Purpose);
        _time = time;
        _lifetime = options.Value.ListPageTokenLifetime;
        if (derived.ActiveId is { } active && derived.Keys.ContainsKey(active))
        {
            _keys = new Dictionary<string, byte[]>(derived.Keys, StringComparer.Ordinal);
            _activeId = active;
            return;
        }
        _keys = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [ProcessKeyId] = RandomNumberGenerator.GetBytes(32) };
        _activeId = ProcessKeyId;
        LogProcessKey(logger);
    }

    /// <summary>Seals <paramref name="cursor"/> for <paramref name="caller"/> listing <paramref name="prefix"/>.</summary>
    public string Seal(CallerIdentity caller, string prefix, ListingCursor cursor)
    {
        var backendCursor = cursor.BackendCursor is null ? [] : Encoding.UTF8.GetBytes(cursor.BackendCursor);
        var plaintext = new byte[(FixedSize + backendCursor.Length + PaddingBlock - 1) / PaddingBlock * PaddingBlock];
        BinaryPrimitives.WriteInt64BigEndian(plaintext, _time.GetUtcNow().ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt32BigEndian(plaintext.AsSpan(8), cursor.ChunkSize);
        BinaryPrimitives.WriteInt32BigEndian(plaintext.AsSpan(12), cursor.Offset);
        plaintext[16] = cursor.BackendCursor is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteInt32BigEndian(plaintext.AsSpan(17), backendCursor.Length);
        backendCursor.CopyTo(plaintext, FixedSize);

        var id = Encoding.ASCII.GetBytes(_activeId);
        var headerLength = 2 + id.Length;
        var envelope = new byte[headerLength + NonceSize + TagSize + plaintext.Length];
        envelope[0] = Format;
        envelope[1] = (byte)id.Length;
        id.CopyTo(envelope, 2);
        var nonce = envelope.AsSpan(headerLength, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_keys[_activeId], TagSize);
        aes.Encrypt(nonce, plaintext, envelope.AsSpan(headerLength + NonceSize + TagSize), envelope.AsSpan(headerLength + NonceSize, TagSize),
            AssociatedData(envelope.AsSpan(0, headerLength), caller, prefix));
        return Base64Url.EncodeToString(envelope);
    }

    /// <summary>Opens a token <see cref="Seal"/> made for the same caller and prefix; INVALID_ARGUMENT for anything else.</summary>
    public ListingCursor Open(CallerIdentity caller, string prefix, string token)
    {
        if (TryOpen(caller, prefix, token) is not { } plaintext)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, Invalid);
        }
        var age = _time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64BigEndian(plaintext));
        var chunkSize = BinaryPrimitives.ReadInt32BigEndian(plaintext.AsSpan(8));
        var offset = BinaryPrimitives.ReadInt32BigEndian(plaintext.AsSpan(12));
        var cursorLength = BinaryPrimitives.ReadInt32BigEndian(plaintext.AsSpan(17));
        if (age > _lifetime || age < -ClockSkew || chunkSize < 1 || offset < 0 || cursorLength < 0 || cursorLength > plaintext.Length - FixedSize)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, Invalid);
        }
        var backendCursor = plaintext[16] == 0 ? null : Encoding.UTF8.GetString(plaintext, FixedSize, cursorLength);
        return new ListingCursor(backendCursor, chunkSize, offset);
    }

    private byte[]? TryOpen(CallerIdentity caller, string prefix, string token)
    {
        var envelope = new byte[Base64Url.GetMaxDecodedLength(token.Length)];
        if (Base64Url.DecodeFromChars(token, envelope, out _, out var written) != System.Buffers.OperationStatus.Done)
        {
            return null;
        }
        envelope = envelope[..written];
        if (envelope.Length < 2 || envelope[0] != Format || envelope[1] is 0 or > 32
            || envelope.Length < 2 + envelope[1] + NonceSize + TagSize + FixedSize)
        {
            return null;
        }
        var headerLength = 2 + envelope[1];
        if (!_keys.TryGetValue(Encoding.ASCII.GetString(envelope, 2, envelope[1]), out var key))
        {
            return null;
        }
        var plaintext = new byte[envelope.Length - headerLength - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(envelope.AsSpan(headerLength, NonceSize), envelope.AsSpan(headerLength + NonceSize + TagSize),
                envelope.AsSpan(headerLength + NonceSize, TagSize), plaintext, AssociatedData(envelope.AsSpan(0, headerLength), caller, prefix));
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    /// <summary>The envelope header, then the caller's whole identity and the prefix, each length-prefixed so no two differ only in framing.</summary>
    private static byte[] AssociatedData(ReadOnlySpan<byte> header, CallerIdentity caller, string prefix)
    {
        using var data = new MemoryStream();
        Append(data, header);
        Append(data, caller.AuthMethod);
        Append(data, caller.Subject);
        Append(data, caller.Attributes.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var (name, value) in caller.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            Append(data, name);
            Append(data, value);
        }
        Append(data, prefix);
        return data.ToArray();
    }

    private static void Append(MemoryStream data, string text) => Append(data, Encoding.UTF8.GetBytes(text));

    private static void Append(MemoryStream data, ReadOnlySpan<byte> bytes)
    {
        Span<byte> length = stackalloc byte[sizeof(int)];
        BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
        data.Write(length);
        data.Write(bytes);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "No cache key ring is configured: ListSecrets page tokens are sealed with a random key of this process and are not accepted by other replicas or after a restart")]
    private static partial void LogProcessKey(ILogger logger);
}
