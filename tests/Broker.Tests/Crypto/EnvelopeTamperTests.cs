using System.Security.Cryptography;
using SecretsBroker.Client.Envelope;
using static SecretsBroker.Broker.Tests.Crypto.EnvelopeFormatTests;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>Every tampering the format promises to detect (docs/envelope-format.md, "What is detected").</summary>
public sealed class EnvelopeTamperTests
{
    private readonly EnvelopeTestKeys _keys = new();
    private readonly byte[] _plaintext = RandomNumberGenerator.GetBytes(4 * Chunk + 100); // chunks 0..3 full, chunk 4 short

    private static int ChunkStart(byte[] envelope, int index) => HeaderLength(envelope) + index * (Chunk + 16);

    private static byte[] Splice(byte[] envelope, params int[] chunkOrder)
    {
        var header = HeaderLength(envelope);
        var chunks = new List<byte[]>();
        for (var start = header; start < envelope.Length; start += Chunk + 16)
        {
            chunks.Add(envelope[start..Math.Min(envelope.Length, start + Chunk + 16)]);
        }
        return [.. envelope[..header], .. chunkOrder.SelectMany(i => chunks[i])];
    }

    private async Task<EnvelopeException> FailsAsync(byte[] envelope, IReadOnlyDictionary<string, string>? context = null)
    {
        var output = new MemoryStream();
        var error = await Assert.ThrowsAsync<EnvelopeException>(() => new EnvelopeEncryption(_keys).DecryptAsync(new MemoryStream(envelope), output, context ?? Context));
        return error;
    }

    [Fact]
    public async Task Untouched_it_opens()
    {
        Assert.Equal(_plaintext, await OpenAsync(_keys, await SealAsync(_keys, _plaintext)));
    }

    [Fact]
    public async Task A_flipped_bit_anywhere_is_detected()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        var header = HeaderLength(envelope);
        // Key path and wrapped key go to the key store, which refuses them when damaged (the broker: INVALID_ARGUMENT,
        // NOT_FOUND); the test keys bind the key path as AAD like the broker's local keyring.
        var refusedByKeyStore = (Start: 53, End: 53 + 2 + _keys.KeyPath.Length + 2 + 1 + 2 + 60);
        // Every header byte, and bytes at the start, middle and tag of each chunk.
        var positions = Enumerable.Range(0, header)
            .Concat(Enumerable.Range(0, 5).SelectMany(i => new[] { ChunkStart(envelope, i), ChunkStart(envelope, i) + 1000, Math.Min(envelope.Length, ChunkStart(envelope, i + 1)) - 1 }));
        foreach (var position in positions.Where(p => p < envelope.Length).Distinct())
        {
            foreach (var bit in new[] { 0, 7 })
            {
                var tampered = (byte[])envelope.Clone();
                tampered[position] ^= (byte)(1 << bit);
                var output = new MemoryStream();
                var error = await Record.ExceptionAsync(() => new EnvelopeEncryption(_keys).DecryptAsync(new MemoryStream(tampered), output, Context));
                var keyStoreMayRefuse = position >= refusedByKeyStore.Start && position < refusedByKeyStore.End;
                Assert.True(error is EnvelopeException || (keyStoreMayRefuse && error is CryptographicException), $"byte {position} bit {bit}: {error?.GetType().Name ?? "no error"}");
                if (position >= header)
                {
                    var chunk = (position - header) / (Chunk + 16);
                    Assert.Equal(EnvelopeError.ChunkAuthentication, ((EnvelopeException)error!).Error);
                    Assert.Contains($"chunk {chunk} ", error.Message);
                    Assert.Equal(chunk * Chunk, output.Length); // only the chunks before it were released
                }
            }
        }
    }

    [Fact]
    public async Task An_edited_header_field_fails_the_key_commitment_before_any_chunk()
    {
        var envelope = await SealAsync(_keys, _plaintext);

        envelope[20] ^= 1; // salt
        var error = await FailsAsync(envelope);

        Assert.Equal(EnvelopeError.WrongKey, error.Error);
        Assert.Contains("wrong data key or modified header", error.Message);
    }

    [Fact]
    public async Task Truncation_at_every_chunk_boundary_is_reported_as_truncation()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        for (var kept = 1; kept <= 4; kept++)
        {
            var error = await FailsAsync(envelope[..ChunkStart(envelope, kept)]);
            Assert.Equal(EnvelopeError.Truncated, error.Error);
            Assert.Contains($"ends after chunk {kept - 1}, before its last chunk", error.Message);
        }
        var headerOnly = await FailsAsync(envelope[..HeaderLength(envelope)]);
        Assert.Equal(EnvelopeError.Truncated, headerOnly.Error);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(-1)]
    [InlineData(-17)]
    public async Task Truncation_inside_a_chunk_or_the_header_is_detected(int cut)
    {
        var envelope = await SealAsync(_keys, _plaintext);
        var length = cut > 0 ? cut + 10 : envelope.Length + cut;
        if (cut > 0)
        {
            Assert.Equal(EnvelopeError.Truncated, (await FailsAsync(envelope[..length])).Error);
            Assert.Equal(EnvelopeError.Truncated, (await FailsAsync(envelope[..(HeaderLength(envelope) - cut)])).Error);
        }
        else
        {
            Assert.Equal(EnvelopeError.ChunkAuthentication, (await FailsAsync(envelope[..length])).Error);
        }
    }

    [Fact]
    public async Task A_chunk_cut_to_less_than_a_tag_is_truncation()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        var error = await FailsAsync(envelope[..(ChunkStart(envelope, 2) + 10)]);
        Assert.Equal(EnvelopeError.Truncated, error.Error);
        Assert.Contains("inside chunk 2", error.Message);
    }

    [Theory]
    [InlineData(new[] { 0, 2, 1, 3, 4 }, 1)] // reordered
    [InlineData(new[] { 0, 1, 1, 2, 3, 4 }, 2)] // duplicated
    [InlineData(new[] { 0, 1, 3, 4 }, 2)] // dropped from the middle
    [InlineData(new[] { 1, 2, 3, 4 }, 0)] // dropped at the start
    [InlineData(new[] { 0, 1, 2, 3, 4, 4 }, 4)] // last chunk repeated
    public async Task Reordered_duplicated_or_dropped_chunks_are_detected_at_the_first_misplaced_one(int[] order, int failingChunk)
    {
        var envelope = await SealAsync(_keys, _plaintext);

        var error = await FailsAsync(Splice(envelope, order));

        Assert.Equal(EnvelopeError.ChunkAuthentication, error.Error);
        Assert.Contains($"chunk {failingChunk} failed authentication", error.Message);
    }

    [Fact]
    public async Task Dropping_the_last_chunk_is_truncation()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        Assert.Equal(EnvelopeError.Truncated, (await FailsAsync(Splice(envelope, 0, 1, 2, 3))).Error);
    }

    [Fact]
    public async Task Appended_bytes_are_detected()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        Assert.Equal(EnvelopeError.ChunkAuthentication, (await FailsAsync([.. envelope, 0])).Error);
        var full = await SealAsync(_keys, new byte[2 * Chunk]); // a full last chunk followed by more
        Assert.Equal(EnvelopeError.ChunkAuthentication, (await FailsAsync([.. full, .. new byte[16]])).Error);
    }

    [Fact]
    public async Task A_header_swapped_from_another_file_fails_the_first_chunk()
    {
        var first = await SealAsync(_keys, _plaintext);
        var second = await SealAsync(_keys, _plaintext);

        var error = await FailsAsync([.. first[..HeaderLength(first)], .. second[HeaderLength(second)..]]);

        Assert.Equal(EnvelopeError.ChunkAuthentication, error.Error);
        Assert.Contains("chunk 0 failed authentication", error.Message);
    }

    [Fact]
    public async Task A_chunk_from_another_file_under_the_same_key_is_detected()
    {
        var first = await SealAsync(_keys, _plaintext);
        var second = await SealAsync(_keys, _plaintext);
        var mixed = (byte[])first.Clone();
        Array.Copy(second, ChunkStart(second, 2), mixed, ChunkStart(first, 2), Chunk + 16);

        Assert.Contains("chunk 2 failed", (await FailsAsync(mixed)).Message);
    }

    [Fact]
    public async Task Another_files_wrapped_key_is_the_wrong_key()
    {
        var first = await SealAsync(_keys, _plaintext);
        var second = await SealAsync(_keys, _plaintext);
        var start = 53 + 2 + _keys.KeyPath.Length + 2 + 1 + 2;
        Array.Copy(second, start, first, start, 60); // a valid wrapped key, of another data key

        var error = await FailsAsync(first);

        Assert.Equal(EnvelopeError.WrongKey, error.Error);
    }

    [Fact]
    public async Task A_key_source_with_other_keys_cannot_open_it()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        await Assert.ThrowsAsync<AuthenticationTagMismatchException>(() => OpenAsync(new EnvelopeTestKeys(_keys.KeyPath), envelope));
    }

    [Fact]
    public async Task A_wrong_data_key_is_reported_as_the_wrong_key()
    {
        var envelope = await SealAsync(_keys, _plaintext);
        var output = new MemoryStream();

        var error = await Assert.ThrowsAsync<EnvelopeException>(() =>
            EnvelopeEncryption.DecryptAsync(new MemoryStream(envelope), output, new FixedKey(RandomNumberGenerator.GetBytes(32)), Context));

        Assert.Equal(EnvelopeError.WrongKey, error.Error);
        Assert.Equal(0, output.Length);
    }

    [Theory]
    [InlineData("train", "trail")]
    [InlineData("envelope", "envelopX")]
    public async Task A_header_edited_to_another_context_or_key_path_fails_even_with_the_right_data_key(string original, string edited)
    {
        // With the data key in hand (a key store that binds neither context nor path), the header is still bound to the chunks.
        var dataKey = await _keys.GenerateDataKeyAsync(_keys.KeyPath, Context, default);
        using var sealedStream = new MemoryStream();
        await EnvelopeEncryption.EncryptAsync(new MemoryStream([1, 2, 3]), sealedStream, dataKey with { PlaintextKey = (byte[])dataKey.PlaintextKey.Clone() }, Context, Chunk);
        var envelope = sealedStream.ToArray();
        var header = HeaderLength(envelope);
        var at = envelope.AsSpan(0, header).IndexOf(System.Text.Encoding.UTF8.GetBytes(original));
        System.Text.Encoding.UTF8.GetBytes(edited).CopyTo(envelope, at);
        var editedHeader = await EnvelopeHeader.ReadAsync(new MemoryStream(envelope));

        var error = await Assert.ThrowsAsync<EnvelopeException>(() => EnvelopeEncryption.DecryptAsync(new MemoryStream(envelope), new MemoryStream(),
            new FixedKey(dataKey.PlaintextKey), editedHeader.Context.ToDictionary(e => e.Key, e => e.Value)));

        Assert.Equal(EnvelopeError.WrongKey, error.Error);
    }

    private sealed class FixedKey(byte[] key) : IEnvelopeKeySource
    {
        public Task<EnvelopeDataKey> GenerateDataKeyAsync(string keyPath, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<EnvelopeDataKey> DecryptDataKeyAsync(string keyPath, byte[] wrappedKey, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken) =>
            Task.FromResult(new EnvelopeDataKey((byte[])key.Clone(), wrappedKey, keyPath, ""));
    }
}
