using System.Buffers.Binary;
using System.Security.Cryptography;
using SecretsBroker.Client.Envelope;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>The envelope format (docs/envelope-format.md) with locally generated data keys: layout and round trips.</summary>
public sealed class EnvelopeFormatTests
{
    internal const int Chunk = 4096;
    internal static readonly Dictionary<string, string> Context = new() { ["model"] = "resnet-fake", ["stage"] = "train" };

    internal static async Task<byte[]> SealAsync(EnvelopeTestKeys keys, byte[] plaintext, IReadOnlyDictionary<string, string>? context = null, int chunk = Chunk)
    {
        using var output = new MemoryStream();
        await new EnvelopeEncryption(keys, chunk).EncryptAsync(new MemoryStream(plaintext), output, keys.KeyPath, context ?? Context);
        return output.ToArray();
    }

    internal static async Task<byte[]> OpenAsync(EnvelopeTestKeys keys, byte[] envelope, IReadOnlyDictionary<string, string>? context = null, string? keyPath = null)
    {
        using var output = new MemoryStream();
        await new EnvelopeEncryption(keys).DecryptAsync(new MemoryStream(envelope), output, context ?? Context, keyPath);
        return output.ToArray();
    }

    internal static int HeaderLength(byte[] envelope) => BinaryPrimitives.ReadInt32BigEndian(envelope.AsSpan(6));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(3 * Chunk)]
    [InlineData(3 * Chunk + 17)]
    public async Task Round_trips_every_length_around_chunk_boundaries(int length)
    {
        var keys = new EnvelopeTestKeys();
        var plaintext = RandomNumberGenerator.GetBytes(length);

        var envelope = await SealAsync(keys, plaintext);

        Assert.Equal(plaintext, await OpenAsync(keys, envelope));
        // One chunk per started chunk, and one (full or empty) last chunk: H + length + 16 per chunk.
        var chunks = Math.Max(1, (length + Chunk - 1) / Chunk);
        Assert.Equal(HeaderLength(envelope) + length + 16 * chunks, envelope.Length);
    }

    [Fact]
    public async Task The_header_is_laid_out_as_documented()
    {
        var keys = new EnvelopeTestKeys("local/layout");
        var envelope = await SealAsync(keys, [1, 2, 3], new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" });

        Assert.Equal("SBEF"u8.ToArray(), envelope[..4]);
        Assert.Equal(1, envelope[4]);
        Assert.Equal(1, envelope[5]);
        Assert.Equal(Chunk, BinaryPrimitives.ReadInt32BigEndian(envelope.AsSpan(10)));
        Assert.Equal("local/layout".Length, BinaryPrimitives.ReadUInt16BigEndian(envelope.AsSpan(53)));
        Assert.Equal("local/layout"u8.ToArray(), envelope[55..67]);
        Assert.Equal([0, 1, (byte)'1'], envelope[67..70]); // key version "1"
        Assert.Equal(60, BinaryPrimitives.ReadUInt16BigEndian(envelope.AsSpan(70))); // the test keys' wrapped key
        var context = 72 + 60;
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(envelope.AsSpan(context)));
        Assert.Equal([0, 1, (byte)'a', 0, 1, (byte)'1', 0, 1, (byte)'b', 0, 1, (byte)'2'], envelope[(context + 2)..(context + 14)]); // sorted
        Assert.Equal(context + 14 + 32, HeaderLength(envelope));
        Assert.Equal(HeaderLength(envelope) + 3 + 16, envelope.Length);

        var header = await EnvelopeHeader.ReadAsync(new MemoryStream(envelope));
        Assert.Equal(("local/layout", "1", Chunk), (header.KeyPath, header.KeyVersion, header.ChunkSize));
        Assert.Equal(["a", "b"], header.Context.Select(e => e.Key));
    }

    [Fact]
    public async Task Two_encryptions_of_the_same_data_differ_in_key_salt_and_nonce_prefix()
    {
        var keys = new EnvelopeTestKeys();
        var plaintext = new byte[100];

        var first = await SealAsync(keys, plaintext);
        var second = await SealAsync(keys, plaintext);

        Assert.NotEqual(first[14..53], second[14..53]);
        Assert.NotEqual(first[HeaderLength(first)..], second[HeaderLength(second)..]);
    }

    [Theory]
    [InlineData(4095)]
    [InlineData(16 * 1024 * 1024 + 1)]
    public async Task Chunk_sizes_outside_the_limits_are_refused_before_a_key_is_used(int chunkSize)
    {
        var keys = new EnvelopeTestKeys();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => SealAsync(keys, [1], chunk: chunkSize));
    }

    [Fact]
    public async Task A_header_claiming_a_huge_chunk_size_is_refused_before_allocating_it()
    {
        var keys = new EnvelopeTestKeys();
        var envelope = await SealAsync(keys, [1, 2, 3]);
        BinaryPrimitives.WriteInt32BigEndian(envelope.AsSpan(10), int.MaxValue);

        var error = await Assert.ThrowsAsync<EnvelopeException>(() => OpenAsync(keys, envelope));
        Assert.Equal(EnvelopeError.Format, error.Error);
        Assert.Contains("chunk size", error.Message);
        Assert.Equal(0, keys.Unwraps);
    }

    [Theory]
    [InlineData(new byte[0], EnvelopeError.Format)]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 0, 0 }, EnvelopeError.Format)]
    [InlineData(new byte[] { (byte)'S', (byte)'B', (byte)'E', (byte)'F', 1 }, EnvelopeError.Truncated)]
    [InlineData(new byte[] { (byte)'S', (byte)'B', (byte)'E', (byte)'F', 2, 1, 0, 0, 0, 100 }, EnvelopeError.Format)]
    [InlineData(new byte[] { (byte)'S', (byte)'B', (byte)'E', (byte)'F', 1, 9, 0, 0, 0, 100 }, EnvelopeError.Format)]
    [InlineData(new byte[] { (byte)'S', (byte)'B', (byte)'E', (byte)'F', 1, 1, 0, 0xff, 0, 0 }, EnvelopeError.Format)]
    public async Task Foreign_or_unsupported_files_are_refused_with_a_format_error(byte[] file, EnvelopeError expected)
    {
        var keys = new EnvelopeTestKeys();
        var error = await Assert.ThrowsAsync<EnvelopeException>(() => OpenAsync(keys, file));
        Assert.Equal(expected, error.Error);
    }

    [Fact]
    public async Task A_context_is_required_to_be_the_one_encrypted_under()
    {
        var keys = new EnvelopeTestKeys();
        var envelope = await SealAsync(keys, [1, 2, 3]);

        foreach (var wrong in new Dictionary<string, string>[] { new(), new() { ["model"] = "resnet-fake" }, new() { ["model"] = "other", ["stage"] = "train" } })
        {
            var error = await Assert.ThrowsAsync<EnvelopeException>(() => OpenAsync(keys, envelope, wrong));
            Assert.Equal(EnvelopeError.ContextMismatch, error.Error);
            Assert.DoesNotContain("resnet-fake", error.Message); // key names only, never values
        }
        Assert.Equal(0, keys.Unwraps);
    }

    [Fact]
    public async Task An_expected_key_path_other_than_the_files_is_refused()
    {
        var keys = new EnvelopeTestKeys("local/checkpoints");
        var envelope = await SealAsync(keys, [1, 2, 3]);

        var error = await Assert.ThrowsAsync<EnvelopeException>(() => OpenAsync(keys, envelope, keyPath: "local/serving"));

        Assert.Equal(EnvelopeError.KeyPathMismatch, error.Error);
        Assert.Equal([1, 2, 3], await OpenAsync(keys, envelope, keyPath: "local/checkpoints"));
    }
}
