using System.Buffers.Binary;
using System.Text;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Crypto;

/// <summary>What a broker ciphertext protects: a value (Encrypt) or a data key (GenerateDataKey). Bound into the AAD/context.</summary>
public enum CiphertextKind : byte
{
    Value = 1,
    DataKey = 2,
}

/// <summary>
/// The broker's self-describing ciphertext (docs/encryption.md, "Ciphertext format"), byte by byte:
/// <code>
/// 0      2    'S' 'B' (0x53 0x42)
/// 2      1    format version, 0x01
/// 3      1    kind: 0x01 value, 0x02 wrapped data key
/// 4      2    M, big-endian; then M bytes: the mount prefix (ASCII)
/// 6+M    2    K, big-endian; then K bytes: the key name inside the mount (ASCII)
/// 8+M+K  1    V; then V bytes: the key version (ASCII, may be empty)
/// ...         the rest: the key store's ciphertext (at least 1 byte)
/// </code>
/// Mount and key are logical path text (ASCII by LogicalPath's rules). Nothing in the header is secret; each store binds
/// kind, mount, key and the caller's context into its ciphertext (<see cref="CryptoContext"/>), so editing the header
/// makes decryption fail.
/// </summary>
public sealed record CiphertextHeader(CiphertextKind Kind, string Mount, string Key)
{
    public const byte FormatVersion = 1;
    private const int FixedBytes = 2 + 1 + 1 + 2 + 2 + 1;

    /// <summary>The key path the ciphertext names (mount prefix / key name).</summary>
    public string KeyPath => $"{Mount}/{Key}";

    /// <summary>Writes the header with <paramref name="ciphertext"/>'s version, followed by its blob.</summary>
    public byte[] Seal(StoreCiphertext ciphertext)
    {
        var mount = Encoding.ASCII.GetBytes(Mount);
        var key = Encoding.ASCII.GetBytes(Key);
        var version = Encoding.ASCII.GetBytes(ciphertext.Version);
        if (version.Length > byte.MaxValue)
        {
            throw new InvalidOperationException("a key store returned a key version longer than 255 bytes");
        }
        var output = new byte[FixedBytes + mount.Length + key.Length + version.Length + ciphertext.Blob.Length];
        var span = output.AsSpan();
        span[0] = (byte)'S';
        span[1] = (byte)'B';
        span[2] = FormatVersion;
        span[3] = (byte)Kind;
        var at = 4;
        BinaryPrimitives.WriteUInt16BigEndian(span[at..], (ushort)mount.Length);
        mount.CopyTo(span[(at += 2)..]);
        BinaryPrimitives.WriteUInt16BigEndian(span[(at += mount.Length)..], (ushort)key.Length);
        key.CopyTo(span[(at += 2)..]);
        span[at += key.Length] = (byte)version.Length;
        version.CopyTo(span[(at += 1)..]);
        ciphertext.Blob.CopyTo(span[(at + version.Length)..]);
        return output;
    }

    /// <summary>Reads a broker ciphertext; INVALID_ARGUMENT (without echoing any of it) when it is not one.</summary>
    public static (CiphertextHeader Header, StoreCiphertext Ciphertext) Open(ReadOnlySpan<byte> data, string field = "ciphertext")
    {
        if (data.Length < FixedBytes + 1 || data[0] != 'S' || data[1] != 'B')
        {
            BrokerException.ThrowInvalidArgument($"{field} is not a broker ciphertext (it must come from Encrypt, GenerateDataKey or Rewrap)");
        }
        if (data[2] != FormatVersion)
        {
            BrokerException.ThrowInvalidArgument($"{field} has format version {data[2]}; this broker reads version {FormatVersion}");
        }
        if (data[3] is not ((byte)CiphertextKind.Value or (byte)CiphertextKind.DataKey))
        {
            BrokerException.ThrowInvalidArgument($"{field} has an unknown kind {data[3]}");
        }
        var at = 4;
        var mount = ReadText(data, ref at, BinaryPrimitives.ReadUInt16BigEndian(data[at..]), 2, field);
        if (at + 2 > data.Length)
        {
            Truncated(field);
        }
        var key = ReadText(data, ref at, BinaryPrimitives.ReadUInt16BigEndian(data[at..]), 2, field);
        if (at + 1 > data.Length)
        {
            Truncated(field);
        }
        var version = ReadText(data, ref at, data[at], 1, field);
        if (at >= data.Length)
        {
            Truncated(field);
        }
        if (LogicalPath.Validate(mount) is not null || LogicalPath.Validate(key) is not null)
        {
            BrokerException.ThrowInvalidArgument($"{field} names a malformed key path");
        }
        return (new CiphertextHeader((CiphertextKind)data[3], mount, key), new StoreCiphertext(version, data[at..].ToArray()));
    }

    private static string ReadText(ReadOnlySpan<byte> data, ref int at, int length, int lengthBytes, string field)
    {
        at += lengthBytes;
        if (at + length > data.Length)
        {
            Truncated(field);
        }
        var text = data.Slice(at, length);
        if (!Ascii.IsValid(text))
        {
            BrokerException.ThrowInvalidArgument($"{field} has a header field that is not ASCII");
        }
        at += length;
        return Encoding.ASCII.GetString(text);
    }

    private static void Truncated(string field) => BrokerException.ThrowInvalidArgument($"{field} is truncated");
}
