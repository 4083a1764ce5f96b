using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SecretsBroker.Client.Envelope;

/// <summary>
/// The header of an envelope file, byte by byte as docs/envelope-format.md lays it out: magic "SBEF",
/// version 1, algorithm 1, header length, chunk size, salt, nonce prefix, key path, key version, wrapped
/// data key, context, key commitment. Parsing is strict: exactly one encoding of a header is accepted.
/// </summary>
public sealed class EnvelopeHeader
{
    public const int DefaultChunkSize = 1 << 20;
    public const int MinChunkSize = 4096;
    public const int MaxChunkSize = 16 << 20;
    public const int MaxHeaderLength = 65536;
    public const int TagLength = 16;
    internal const int SaltLength = 32;
    internal const int NoncePrefixLength = 7;
    internal const int CommitmentLength = 32;
    // magic(4) version(1) algorithm(1) length(4) chunk size(4) salt(32) nonce prefix(7)
    private const int FixedLength = 53;
    private const int MinHeaderLength = FixedLength + 2 + 1 + 2 + 2 + 1 + 2 + CommitmentLength;
    private const int MaxKeyPathBytes = 1024, MaxKeyVersionBytes = 256, MaxWrappedKeyBytes = 8192;
    private const int MaxContextEntries = 64, MaxContextKeyBytes = 256, MaxContextValueBytes = 1024;
    private static ReadOnlySpan<byte> Magic => "SBEF"u8;
    private static ReadOnlySpan<byte> KdfLabel => "SBEF v1 file key"u8;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _bound; // the header bytes the file key derives from (see Keys in the format doc)

    private EnvelopeHeader(int chunkSize, byte[] salt, byte[] noncePrefix, string keyPath, string keyVersion, byte[] wrappedKey,
        IReadOnlyList<KeyValuePair<string, string>> context, byte[] commitment, byte[] bound)
    {
        (ChunkSize, Salt, NoncePrefix, KeyPath, KeyVersion, WrappedKey, Context, Commitment, _bound) =
            (chunkSize, salt, noncePrefix, keyPath, keyVersion, wrappedKey, context, commitment, bound);
    }

    public int ChunkSize { get; }
    public string KeyPath { get; }
    public string KeyVersion { get; }
    public byte[] WrappedKey { get; }
    /// <summary>The context, sorted by key (UTF-8 byte order) as stored.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Context { get; }
    internal byte[] Salt { get; }
    internal byte[] NoncePrefix { get; }
    internal byte[] Commitment { get; private set; }

    /// <summary>The context as stored in a header: validated, keys unique, sorted by their UTF-8 bytes.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Canonical(IReadOnlyDictionary<string, string>? context)
    {
        var entries = (context ?? new Dictionary<string, string>()).ToList();
        if (entries.Count > MaxContextEntries)
        {
            throw new ArgumentException($"a context holds at most {MaxContextEntries} entries", nameof(context));
        }
        foreach (var (key, value) in entries)
        {
            CheckLength(key, 1, MaxContextKeyBytes, "a context key");
            CheckLength(value ?? throw new ArgumentException("context values cannot be null", nameof(context)), 0, MaxContextValueBytes, "a context value");
        }
        entries.Sort((a, b) => StrictUtf8.GetBytes(a.Key).AsSpan().SequenceCompareTo(StrictUtf8.GetBytes(b.Key)));
        return entries;
    }

    internal static EnvelopeHeader Create(EnvelopeDataKey dataKey, IReadOnlyDictionary<string, string>? context, int chunkSize)
    {
        if (chunkSize is < MinChunkSize or > MaxChunkSize)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, $"the chunk size must be {MinChunkSize} to {MaxChunkSize} bytes");
        }
        CheckLength(dataKey.KeyPath, 1, MaxKeyPathBytes, "the key path");
        CheckLength(dataKey.KeyVersion, 0, MaxKeyVersionBytes, "the key version");
        if (dataKey.WrappedKey.Length is 0 or > MaxWrappedKeyBytes)
        {
            throw new ArgumentException($"the wrapped key must be 1 to {MaxWrappedKeyBytes} bytes", nameof(dataKey));
        }
        var header = new EnvelopeHeader(chunkSize, RandomNumberGenerator.GetBytes(SaltLength), RandomNumberGenerator.GetBytes(NoncePrefixLength),
            dataKey.KeyPath, dataKey.KeyVersion, dataKey.WrappedKey, Canonical(context), new byte[CommitmentLength], []);
        var encoded = header.Encode();
        return Parse(encoded); // one code path computes the bound bytes
    }

    /// <summary>The header's bytes, commitment included.</summary>
    internal byte[] Encode()
    {
        using var output = new MemoryStream();
        Span<byte> fixedPart = stackalloc byte[FixedLength];
        Magic.CopyTo(fixedPart);
        fixedPart[4] = 1;
        fixedPart[5] = 1;
        BinaryPrimitives.WriteInt32BigEndian(fixedPart[10..], ChunkSize);
        Salt.CopyTo(fixedPart[14..]);
        NoncePrefix.CopyTo(fixedPart[46..]);
        output.Write(fixedPart);
        WriteField(output, StrictUtf8.GetBytes(KeyPath));
        WriteField(output, StrictUtf8.GetBytes(KeyVersion));
        WriteField(output, WrappedKey);
        WriteUInt16(output, Context.Count);
        foreach (var (key, value) in Context)
        {
            WriteField(output, StrictUtf8.GetBytes(key));
            WriteField(output, StrictUtf8.GetBytes(value));
        }
        output.Write(Commitment);
        var bytes = output.ToArray();
        if (bytes.Length > MaxHeaderLength)
        {
            throw new ArgumentException($"the header would be {bytes.Length} bytes, more than {MaxHeaderLength}: shorten the context");
        }
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(6), bytes.Length);
        return bytes;
    }

    /// <summary>The chunk key and the key commitment (HKDF-SHA256 over the data key, salt and bound header bytes).</summary>
    internal (byte[] FileKey, byte[] Commitment) DeriveKeys(ReadOnlySpan<byte> dataKey)
    {
        if (dataKey.Length != 32)
        {
            throw new EnvelopeException(EnvelopeError.WrongKey, $"the data key is {dataKey.Length} bytes, not 32");
        }
        var info = new byte[KdfLabel.Length + 32];
        KdfLabel.CopyTo(info);
        SHA256.HashData(_bound, info.AsSpan(KdfLabel.Length));
        var okm = HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey.ToArray(), 64, Salt, info);
        return (okm[..32], okm[32..]);
    }

    internal void SetCommitment(byte[] commitment) => Commitment = commitment;

    /// <summary>Reads and parses the header at the start of <paramref name="source"/>, leaving the stream at the first chunk.</summary>
    public static async Task<EnvelopeHeader> ReadAsync(Stream source, CancellationToken cancellationToken = default)
    {
        var start = new byte[10];
        var read = await EnvelopeStreams.ReadFullAsync(source, start, cancellationToken).ConfigureAwait(false);
        if (read < 4 || !start.AsSpan(0, 4).SequenceEqual(Magic))
        {
            throw new EnvelopeException(EnvelopeError.Format, "not a SecretsBroker envelope file (no SBEF magic)");
        }
        if (read < start.Length)
        {
            throw new EnvelopeException(EnvelopeError.Truncated, "the file ends inside its header");
        }
        CheckVersion(start);
        var length = BinaryPrimitives.ReadInt32BigEndian(start.AsSpan(6));
        if (length is < MinHeaderLength or > MaxHeaderLength)
        {
            throw new EnvelopeException(EnvelopeError.Format, $"malformed header: header length {length} outside {MinHeaderLength}..{MaxHeaderLength}");
        }
        var bytes = new byte[length];
        start.CopyTo(bytes, 0);
        if (await EnvelopeStreams.ReadFullAsync(source, bytes.AsMemory(start.Length), cancellationToken).ConfigureAwait(false) < length - start.Length)
        {
            throw new EnvelopeException(EnvelopeError.Truncated, "the file ends inside its header");
        }
        return Parse(bytes);
    }

    private static void CheckVersion(ReadOnlySpan<byte> start)
    {
        if (start[4] != 1)
        {
            throw new EnvelopeException(EnvelopeError.Format, $"unsupported envelope format version {start[4]} (this client reads version 1)");
        }
        if (start[5] != 1)
        {
            throw new EnvelopeException(EnvelopeError.Format, $"unsupported envelope algorithm {start[5]} (this client knows algorithm 1, AES-256-GCM STREAM)");
        }
    }

    internal static EnvelopeHeader Parse(byte[] bytes)
    {
        var reader = new FieldReader(bytes);
        CheckVersion(bytes);
        var chunkSize = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(10));
        if (chunkSize is < MinChunkSize or > MaxChunkSize)
        {
            throw new EnvelopeException(EnvelopeError.Format, $"malformed header: chunk size {chunkSize} outside {MinChunkSize}..{MaxChunkSize}");
        }
        reader.Position = FixedLength;
        var keyPathStart = reader.Position;
        var keyPath = reader.String(1, MaxKeyPathBytes, "key path");
        var keyPathEnd = reader.Position;
        var keyVersion = reader.String(0, MaxKeyVersionBytes, "key version");
        var wrapped = reader.Bytes(1, MaxWrappedKeyBytes, "wrapped key").ToArray();
        var contextStart = reader.Position;
        var count = reader.UInt16();
        if (count > MaxContextEntries)
        {
            throw new EnvelopeException(EnvelopeError.Format, $"malformed header: {count} context entries, more than {MaxContextEntries}");
        }
        var context = new List<KeyValuePair<string, string>>(count);
        byte[]? previous = null;
        for (var i = 0; i < count; i++)
        {
            var keyBytes = reader.Bytes(1, MaxContextKeyBytes, "context key").ToArray();
            if (previous is not null && previous.AsSpan().SequenceCompareTo(keyBytes) >= 0)
            {
                throw new EnvelopeException(EnvelopeError.Format, "malformed header: context keys unsorted or repeated");
            }
            previous = keyBytes;
            context.Add(new(FieldReader.Decode(keyBytes, "context key"), reader.String(0, MaxContextValueBytes, "context value")));
        }
        var contextEnd = reader.Position;
        if (bytes.Length - reader.Position != CommitmentLength)
        {
            throw new EnvelopeException(EnvelopeError.Format, "malformed header: its fields do not add up to its length");
        }
        var bound = new byte[6 + (FixedLength - 10) + (keyPathEnd - keyPathStart) + (contextEnd - contextStart)];
        var span = bound.AsSpan();
        bytes.AsSpan(0, 6).CopyTo(span);
        bytes.AsSpan(10, FixedLength - 10).CopyTo(span[6..]);
        bytes.AsSpan(keyPathStart, keyPathEnd - keyPathStart).CopyTo(span[(6 + FixedLength - 10)..]);
        bytes.AsSpan(contextStart, contextEnd - contextStart).CopyTo(span[(6 + FixedLength - 10 + keyPathEnd - keyPathStart)..]);
        return new EnvelopeHeader(chunkSize, bytes[14..46], bytes[46..53], keyPath, keyVersion, wrapped, context, bytes[^CommitmentLength..], bound);
    }

    private static void CheckLength(string value, int min, int max, string what)
    {
        ArgumentNullException.ThrowIfNull(value);
        var length = StrictUtf8.GetByteCount(value);
        if (length < min || length > max)
        {
            throw new ArgumentException($"{what} must be {min} to {max} UTF-8 bytes");
        }
    }

    private static void WriteUInt16(Stream output, int value)
    {
        Span<byte> prefix = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, checked((ushort)value));
        output.Write(prefix);
    }

    private static void WriteField(Stream output, ReadOnlySpan<byte> value)
    {
        WriteUInt16(output, value.Length);
        output.Write(value);
    }

    private sealed class FieldReader(byte[] bytes)
    {
        public int Position { get; set; }

        public int UInt16()
        {
            if (bytes.Length - Position < 2 + CommitmentLength)
            {
                throw new EnvelopeException(EnvelopeError.Format, "malformed header: a field runs past the header's end");
            }
            var value = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(Position));
            Position += 2;
            return value;
        }

        public ReadOnlySpan<byte> Bytes(int min, int max, string what)
        {
            var length = UInt16();
            if (length < min || length > max)
            {
                throw new EnvelopeException(EnvelopeError.Format, $"malformed header: {what} of {length} bytes, outside {min}..{max}");
            }
            if (bytes.Length - Position < length + CommitmentLength)
            {
                throw new EnvelopeException(EnvelopeError.Format, "malformed header: a field runs past the header's end");
            }
            var span = bytes.AsSpan(Position, length);
            Position += length;
            return span;
        }

        public string String(int min, int max, string what) => Decode(Bytes(min, max, what), what);

        public static string Decode(ReadOnlySpan<byte> value, string what)
        {
            try
            {
                return StrictUtf8.GetString(value);
            }
            catch (DecoderFallbackException ex)
            {
                throw new EnvelopeException(EnvelopeError.Format, $"malformed header: {what} is not UTF-8", ex);
            }
        }
    }
}
