using System.Security.Cryptography;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client.Envelope;
using static SecretsBroker.Broker.Tests.Crypto.EnvelopeFormatTests;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>Files: the plaintext appears at the destination only once the whole file authenticated.</summary>
public sealed class EnvelopeFileTests : IDisposable
{
    private readonly TestDirectory _directory = new();
    private readonly EnvelopeTestKeys _keys = new();

    public void Dispose() => _directory.Dispose();

    private string PathOf(string name) => Path.Combine(_directory.Path, name);

    [Fact]
    public async Task A_file_round_trips_and_the_plaintext_is_private_to_its_owner()
    {
        var plaintext = RandomNumberGenerator.GetBytes(3 * Chunk + 5);
        await File.WriteAllBytesAsync(PathOf("model.bin"), plaintext);
        var envelope = new EnvelopeEncryption(_keys, Chunk);

        await envelope.EncryptFileAsync(PathOf("model.bin"), PathOf("model.sbef"), _keys.KeyPath, Context);
        await envelope.DecryptFileAsync(PathOf("model.sbef"), PathOf("restored.bin"), Context);

        Assert.Equal(plaintext, await File.ReadAllBytesAsync(PathOf("restored.bin")));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PathOf("restored.bin")));
        }
        Assert.Equal(["model.bin", "model.sbef", "restored.bin"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task A_file_failing_in_its_last_chunk_leaves_no_partial_plaintext_and_the_destination_untouched()
    {
        var plaintext = RandomNumberGenerator.GetBytes(3 * Chunk + 5);
        await File.WriteAllBytesAsync(PathOf("model.bin"), plaintext);
        var envelope = new EnvelopeEncryption(_keys, Chunk);
        await envelope.EncryptFileAsync(PathOf("model.bin"), PathOf("model.sbef"), _keys.KeyPath, Context);
        var sealedBytes = await File.ReadAllBytesAsync(PathOf("model.sbef"));
        sealedBytes[^1] ^= 1; // the last chunk's tag: three chunks authenticate before it fails
        await File.WriteAllBytesAsync(PathOf("model.sbef"), sealedBytes);
        await File.WriteAllTextAsync(PathOf("restored.bin"), "previous content");

        var error = await Assert.ThrowsAsync<EnvelopeException>(() => envelope.DecryptFileAsync(PathOf("model.sbef"), PathOf("restored.bin"), Context));

        Assert.Contains("chunk 3 failed authentication", error.Message);
        Assert.Equal("previous content", await File.ReadAllTextAsync(PathOf("restored.bin")));
        Assert.Equal(["model.bin", "model.sbef", "restored.bin"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task A_refused_file_creates_no_destination()
    {
        await File.WriteAllBytesAsync(PathOf("not-an-envelope"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

        await Assert.ThrowsAsync<EnvelopeException>(() => new EnvelopeEncryption(_keys).DecryptFileAsync(PathOf("not-an-envelope"), PathOf("out"), Context));

        Assert.Equal(["not-an-envelope"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName));
    }
}

/// <summary>Memory stays at a few chunks whatever the size: allocations measured over 128 MiB each way.</summary>
[Collection(EnvelopeMemoryCollection.Name)]
public sealed class EnvelopeMemoryTests : IDisposable
{
    private readonly TestDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Encrypting_and_decrypting_128_MiB_allocates_a_few_chunks_not_the_data()
    {
        const long size = 128L << 20;
        const int chunk = 256 << 10;
        var keys = new EnvelopeTestKeys();
        var path = Path.Combine(_directory.Path, "zeros.sbef");
        var envelope = new EnvelopeEncryption(keys, chunk);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        await using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await envelope.EncryptAsync(new ZeroStream(size), output, keys.KeyPath, Context);
        }
        var encrypting = GC.GetTotalAllocatedBytes(precise: true) - before;
        var sink = new CountingSink();
        before = GC.GetTotalAllocatedBytes(precise: true);
        await using (var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true))
        {
            await envelope.DecryptAsync(input, sink, Context);
        }
        var decrypting = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(size, sink.Written);
        Assert.False(sink.SawNonZero);
        // Three chunk buffers each way, plus small change; the data is 512 chunks.
        Assert.True(encrypting < 4 * chunk + (1 << 20), $"encrypting 128 MiB allocated {encrypting} bytes");
        Assert.True(decrypting < 4 * chunk + (1 << 20), $"decrypting 128 MiB allocated {decrypting} bytes");
    }

    [Fact]
    public async Task Chunks_are_sealed_and_opened_in_the_buffer_they_are_read_into()
    {
        // Issue #20 (speed): no separate plaintext or ciphertext copy of a chunk, and no second chunk read ahead to know
        // which is the last (the byte past each chunk is carried over instead). Encrypting holds one sealed-chunk
        // buffer; decrypting one, plus one for a full last chunk (kept intact for the truncation check). Before: three.
        const long size = 64L << 20;
        const int chunk = 256 << 10;
        var keys = new EnvelopeTestKeys();
        var envelope = new EnvelopeEncryption(keys, chunk);
        var sealedStream = new MemoryStream(capacity: (int)size + 16 * (int)(size / chunk + 1) + (64 << 10));
        var smallChange = chunk / 2;

        // Memory streams complete every read and write synchronously, so the whole pipeline runs on this thread and
        // its own allocation counter sees all of it and nothing of other tests' background work (the process-wide
        // counter once caught 12 KB from elsewhere on a loaded CI run).
        var before = GC.GetAllocatedBytesForCurrentThread();
        var encryption = envelope.EncryptAsync(new ZeroStream(size), sealedStream, keys.KeyPath, Context);
        var encrypting = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(encryption.IsCompletedSuccessfully, "encryption over memory streams went asynchronous: the count is incomplete");
        var sink = new CountingSink();
        var source = new MemoryStream(sealedStream.GetBuffer(), 0, (int)sealedStream.Length, writable: false);
        before = GC.GetAllocatedBytesForCurrentThread();
        var decryption = envelope.DecryptAsync(source, sink, Context);
        var decrypting = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(decryption.IsCompletedSuccessfully, "decryption over memory streams went asynchronous: the count is incomplete");
        await encryption;
        await decryption;

        Assert.Equal(size, sink.Written);
        Assert.False(sink.SawNonZero);
        Assert.True(encrypting < chunk + 16 + smallChange, $"encrypting allocated {encrypting} bytes: more than one sealed chunk");
        Assert.True(decrypting < 2 * (chunk + 16) + smallChange, $"decrypting allocated {decrypting} bytes: more than two sealed chunks");
    }

    [Fact]
    public async Task A_source_that_returns_a_few_bytes_per_read_round_trips()
    {
        var keys = new EnvelopeTestKeys();
        var plaintext = RandomNumberGenerator.GetBytes(3 * Chunk + 100);
        var sealedBytes = new MemoryStream();
        await new EnvelopeEncryption(keys, Chunk).EncryptAsync(new TrickleStream(plaintext, 997), sealedBytes, keys.KeyPath, Context);
        var restored = new MemoryStream();

        await new EnvelopeEncryption(keys).DecryptAsync(new TrickleStream(sealedBytes.ToArray(), 1001), restored, Context);

        Assert.Equal(plaintext, restored.ToArray());
    }

    /// <summary>Returns at most <paramref name="most"/> bytes per read, as a socket or pipe may.</summary>
    private sealed class TrickleStream(byte[] data, int most) : MemoryStream(data, writable: false)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, most)]);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, most));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, most)], cancellationToken);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EnvelopeMemoryCollection
{
    public const string Name = "Envelope memory (alone: measures process-wide allocations)";
}
