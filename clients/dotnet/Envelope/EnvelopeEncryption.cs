using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecretsBroker.Client.Envelope;

/// <summary>
/// Envelope encryption of large data (model checkpoints, safetensors files) in the format of
/// docs/envelope-format.md: a data key from <paramref name="keys"/> (the broker's GenerateDataKey), then
/// AES-256-GCM chunks of <paramref name="chunkSize"/> bytes under the STREAM construction of Tink's streaming
/// AEAD. Memory is one sealed chunk (two at the end of a decrypted file) whatever the size of the data. Decryption writes a chunk only after its tag
/// verified; <see cref="DecryptFileAsync"/> publishes the file only after the last one did.
/// </summary>
public sealed partial class EnvelopeEncryption(IEnvelopeKeySource keys, int chunkSize = EnvelopeHeader.DefaultChunkSize)
{
    private const int NonceLength = 12;
    private const int TagLength = EnvelopeHeader.TagLength;

    /// <summary>
    /// Encrypts <paramref name="source"/> to <paramref name="destination"/> under a fresh data key of
    /// <paramref name="keyPath"/>, bound to <paramref name="context"/>. Returns the header written.
    /// </summary>
    public async Task<EnvelopeHeader> EncryptAsync(Stream source, Stream destination, string keyPath, IReadOnlyDictionary<string, string>? context = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);
        context ??= new Dictionary<string, string>();
        EnvelopeHeader.Canonical(context); // refuse a bad context before asking for a key
        var dataKey = await keys.GenerateDataKeyAsync(keyPath, context, cancellationToken).ConfigureAwait(false);
        try
        {
            return await EncryptAsync(source, destination, dataKey, context, chunkSize, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey.PlaintextKey);
        }
    }

    /// <summary>Encrypts under a data key the caller already holds (for example a test's, or a batch sharing one GenerateDataKey).</summary>
    public static async Task<EnvelopeHeader> EncryptAsync(Stream source, Stream destination, EnvelopeDataKey dataKey, IReadOnlyDictionary<string, string>? context,
        int chunkSize = EnvelopeHeader.DefaultChunkSize, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataKey);
        var header = EnvelopeHeader.Create(dataKey, context, chunkSize);
        var (fileKey, commitment) = header.DeriveKeys(dataKey.PlaintextKey);
        header.SetCommitment(commitment);
        await destination.WriteAsync(header.Encode(), cancellationToken).ConfigureAwait(false);
        using var aes = new AesGcm(fileKey, TagLength);
        CryptographicOperations.ZeroMemory(fileKey);
        // One buffer: each chunk is read into it, sealed in place with its tag appended, and written from there (one copy
        // in, the read; none in between). Whether a chunk is the last one is known by reading one byte past it, which is
        // carried over to the start of the next chunk, rather than reading the whole next chunk ahead into a second buffer.
        var buffer = GC.AllocateUninitializedArray<byte>(chunkSize + TagLength);
        var nonce = new byte[NonceLength];
        try
        {
            var pending = 0;
            for (uint index = 0; ; index++)
            {
                var count = pending + await EnvelopeStreams.ReadFullAsync(source, buffer.AsMemory(pending, chunkSize + 1 - pending), cancellationToken).ConfigureAwait(false);
                var last = count <= chunkSize;
                var length = last ? count : chunkSize;
                var carried = buffer[chunkSize]; // the next chunk's first byte, where the tag goes
                Nonce(nonce, header.NoncePrefix, index, last);
                aes.Encrypt(nonce, buffer.AsSpan(0, length), buffer.AsSpan(0, length), buffer.AsSpan(length, TagLength));
                await destination.WriteAsync(buffer.AsMemory(0, length + TagLength), cancellationToken).ConfigureAwait(false);
                if (last)
                {
                    break;
                }
                if (index == uint.MaxValue)
                {
                    throw new ArgumentException("the data needs more than 2^32 chunks: use a larger chunk size");
                }
                (buffer[0], pending) = (carried, 1);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
        await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
        return header;
    }

    /// <summary>
    /// Decrypts an envelope stream, unwrapping its data key through the key source. <paramref name="context"/>
    /// must be the context it was encrypted under; <paramref name="expectedKeyPath"/>, when given, must be its
    /// key path. Plaintext is written chunk by chunk once each chunk authenticated: on an exception, discard
    /// what was written (or use <see cref="DecryptFileAsync"/>, which does).
    /// </summary>
    /// <exception cref="EnvelopeException">The file is malformed, truncated, tampered with, or not for this key or context.</exception>
    public Task<EnvelopeHeader> DecryptAsync(Stream source, Stream destination, IReadOnlyDictionary<string, string>? context = null, string? expectedKeyPath = null,
        CancellationToken cancellationToken = default) =>
        DecryptAsync(source, destination, keys, context, expectedKeyPath, cancellationToken);

    /// <summary>Decrypts with an explicit key source; see the instance method.</summary>
    public static async Task<EnvelopeHeader> DecryptAsync(Stream source, Stream destination, IEnvelopeKeySource keySource,
        IReadOnlyDictionary<string, string>? context = null, string? expectedKeyPath = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(keySource);
        var header = await EnvelopeHeader.ReadAsync(source, cancellationToken).ConfigureAwait(false);
        if (expectedKeyPath is not null && !string.Equals(expectedKeyPath, header.KeyPath, StringComparison.Ordinal))
        {
            throw new EnvelopeException(EnvelopeError.KeyPathMismatch, $"the file was encrypted under key '{header.KeyPath}', not '{expectedKeyPath}'");
        }
        context ??= new Dictionary<string, string>();
        if (!SameContext(header.Context, EnvelopeHeader.Canonical(context)))
        {
            throw new EnvelopeException(EnvelopeError.ContextMismatch,
                $"the file was encrypted under a different context (its context has the keys [{string.Join(", ", header.Context.Select(e => e.Key))}])");
        }
        var unwrapped = await keySource.DecryptDataKeyAsync(header.KeyPath, header.WrappedKey, context, cancellationToken).ConfigureAwait(false);
        var dataKey = unwrapped.PlaintextKey;
        byte[] fileKey;
        try
        {
            // Key version and wrapped key stay out of the file key (so Rewrap needs no re-encryption): the
            // version is checked against the one the key store reports instead.
            if (unwrapped.KeyVersion.Length > 0 && !string.Equals(unwrapped.KeyVersion, header.KeyVersion, StringComparison.Ordinal))
            {
                throw new EnvelopeException(EnvelopeError.WrongKey,
                    $"the header names key version '{header.KeyVersion}' but the key store unwrapped its data key with version '{unwrapped.KeyVersion}': modified header");
            }
            (fileKey, var commitment) = header.DeriveKeys(dataKey);
            if (!CryptographicOperations.FixedTimeEquals(commitment, header.Commitment))
            {
                throw new EnvelopeException(EnvelopeError.WrongKey, "the data key does not open this file: wrong data key or modified header");
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
        using var aes = new AesGcm(fileKey, TagLength);
        CryptographicOperations.ZeroMemory(fileKey);
        await OpenChunksAsync(source, destination, header, aes, cancellationToken).ConfigureAwait(false);
        return header;
    }

    private static async Task OpenChunksAsync(Stream source, Stream destination, EnvelopeHeader header, AesGcm aes, CancellationToken cancellationToken)
    {
        // One buffer: each sealed chunk is read straight into it, opened in place and its plaintext written from there
        // (one copy in, the read; none in between). Whether a chunk is the last one is known by reading one byte past
        // it, carried over to the start of the next chunk. A full last chunk is opened into a second buffer instead, so
        // its ciphertext survives a failed try for the truncation check below (once per file, at its end).
        var sealedSize = header.ChunkSize + TagLength;
        var buffer = GC.AllocateUninitializedArray<byte>(sealedSize + 1);
        byte[]? lastChunk = null;
        var nonce = new byte[NonceLength];
        try
        {
            var pending = 0;
            for (uint index = 0; ; index++)
            {
                var count = pending + await EnvelopeStreams.ReadFullAsync(source, buffer.AsMemory(pending, sealedSize + 1 - pending), cancellationToken).ConfigureAwait(false);
                if (count < TagLength)
                {
                    throw new EnvelopeException(EnvelopeError.Truncated, count == 0
                        ? $"the file ends after chunk {(long)index - 1}, before its last chunk"
                        : $"the file ends inside chunk {index}");
                }
                var last = count <= sealedSize;
                var chunk = buffer.AsSpan(0, last ? count : sealedSize);
                var length = chunk.Length - TagLength;
                var plaintext = last && chunk.Length == sealedSize ? lastChunk = GC.AllocateUninitializedArray<byte>(length) : buffer;
                if (!TryOpen(aes, nonce, header.NoncePrefix, index, last, chunk, plaintext.AsSpan(0, length)))
                {
                    // A full chunk that opens as a middle chunk where the file ends: cut at a chunk boundary.
                    if (last && chunk.Length == sealedSize && TryOpen(aes, nonce, header.NoncePrefix, index, false, chunk, plaintext.AsSpan(0, length)))
                    {
                        throw new EnvelopeException(EnvelopeError.Truncated, $"the file ends after chunk {index}, before its last chunk");
                    }
                    throw new EnvelopeException(EnvelopeError.ChunkAuthentication,
                        $"chunk {index} failed authentication: the file was modified, truncated, or its chunks reordered, duplicated, dropped or taken from another file");
                }
                await destination.WriteAsync(plaintext.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                if (last)
                {
                    break;
                }
                if (index == uint.MaxValue)
                {
                    throw new EnvelopeException(EnvelopeError.ChunkAuthentication, "more than 2^32 chunks");
                }
                (buffer[0], pending) = (buffer[sealedSize], 1);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
            CryptographicOperations.ZeroMemory(lastChunk);
        }
        await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static bool TryOpen(AesGcm aes, byte[] nonce, byte[] prefix, uint index, bool last, ReadOnlySpan<byte> chunk, Span<byte> plaintext)
    {
        Nonce(nonce, prefix, index, last);
        try
        {
            aes.Decrypt(nonce, chunk[..^TagLength], chunk[^TagLength..], plaintext);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    /// <summary>nonce prefix (7) || chunk index, u32 big-endian (4) || last-chunk flag (1), as Tink's AesGcmHkdfStreaming.</summary>
    private static void Nonce(byte[] nonce, byte[] prefix, uint index, bool last)
    {
        prefix.CopyTo(nonce, 0);
        BinaryPrimitives.WriteUInt32BigEndian(nonce.AsSpan(7), index);
        nonce[11] = last ? (byte)1 : (byte)0;
    }

    private static bool SameContext(IReadOnlyList<KeyValuePair<string, string>> a, IReadOnlyList<KeyValuePair<string, string>> b) =>
        a.Count == b.Count && a.Zip(b).All(pair => pair.First.Key == pair.Second.Key && pair.First.Value == pair.Second.Value);
}
