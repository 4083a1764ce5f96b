using System.Buffers.Binary;
using System.Text;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Crypto;

/// <summary>
/// The caller's context (key/value pairs bound to a ciphertext), checked and encoded canonically, so the same pairs in any
/// order give the same bytes. Values never leave the broker but inside the key store's request.
/// </summary>
public static class CryptoContext
{
    public const int MaxPairs = 64;
    public const int MaxKeyLength = 128;
    public const int MaxValueLength = 1024;

    /// <summary>Context keys with this prefix are the broker's own (the KMS EncryptionContext entry naming the kind).</summary>
    public const string ReservedPrefix = "secretsbroker:";

    /// <summary>The EncryptionContext entry that binds the ciphertext kind for stores that take a string map.</summary>
    public const string KindKey = ReservedPrefix + "kind";

    private static readonly byte[] Label = "secretsbroker/crypto/v1\0"u8.ToArray();

    /// <summary>INVALID_ARGUMENT when the context breaks a limit; messages never quote a key or value.</summary>
    public static void Validate(IReadOnlyDictionary<string, string> context)
    {
        if (context.Count > MaxPairs)
        {
            BrokerException.ThrowInvalidArgument($"context has {context.Count} entries; the limit is {MaxPairs}");
        }
        foreach (var (key, value) in context)
        {
            if (key.Length is 0 or > MaxKeyLength)
            {
                BrokerException.ThrowInvalidArgument($"context keys must be 1 to {MaxKeyLength} characters long");
            }
            if (value.Length > MaxValueLength)
            {
                BrokerException.ThrowInvalidArgument($"context values must be at most {MaxValueLength} characters long");
            }
            if (key.StartsWith(ReservedPrefix, StringComparison.Ordinal))
            {
                BrokerException.ThrowInvalidArgument($"context keys starting with '{ReservedPrefix}' are reserved for the broker");
            }
        }
    }

    /// <summary>
    /// The store input for a ciphertext described by <paramref name="header"/>: the AAD bytes
    /// <c>"secretsbroker/crypto/v1\0" | kind (1 byte) | u16be len | mount | u16be len | key | u32be pairs | pairs</c>,
    /// each pair <c>u32be len | key (UTF-8) | u32be len | value (UTF-8)</c>, sorted by the keys' UTF-8 bytes; and the
    /// string map of the caller's pairs plus <see cref="KindKey"/>.
    /// </summary>
    public static KeyStoreInput Bind(CiphertextHeader header, IReadOnlyDictionary<string, string> context)
    {
        var pairs = context.Select(p => (Key: Encoding.UTF8.GetBytes(p.Key), Value: Encoding.UTF8.GetBytes(p.Value)))
            .OrderBy(p => p.Key, ByteOrder.Instance).ToArray();
        var mount = Encoding.ASCII.GetBytes(header.Mount);
        var key = Encoding.ASCII.GetBytes(header.Key);
        var length = Label.Length + 1 + 2 + mount.Length + 2 + key.Length + 4 + pairs.Sum(p => 8 + p.Key.Length + p.Value.Length);
        var aad = new byte[length];
        var span = aad.AsSpan();
        Label.CopyTo(span);
        var at = Label.Length;
        span[at++] = (byte)header.Kind;
        at = WriteBlock(span, at, mount, 2);
        at = WriteBlock(span, at, key, 2);
        BinaryPrimitives.WriteUInt32BigEndian(span[at..], (uint)pairs.Length);
        at += 4;
        foreach (var (pairKey, pairValue) in pairs)
        {
            at = WriteBlock(span, at, pairKey, 4);
            at = WriteBlock(span, at, pairValue, 4);
        }
        var map = new Dictionary<string, string>(context, StringComparer.Ordinal)
        {
            [KindKey] = header.Kind == CiphertextKind.Value ? "value" : "datakey",
        };
        return new KeyStoreInput(aad, map);
    }

    private static int WriteBlock(Span<byte> span, int at, byte[] block, int lengthBytes)
    {
        if (lengthBytes == 2)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span[at..], (ushort)block.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(span[at..], (uint)block.Length);
        }
        block.CopyTo(span[(at + lengthBytes)..]);
        return at + lengthBytes + block.Length;
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
