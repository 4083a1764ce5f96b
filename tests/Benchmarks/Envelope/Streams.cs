using System.Security.Cryptography;
using SecretsBroker.Client.Envelope;

namespace SecretsBroker.Benchmarks.Envelope;

/// <summary>Data keys made in-process (the broker is not what is measured): AES-GCM-wrapped under a random key.</summary>
internal sealed class LocalKeySource : IEnvelopeKeySource
{
    private readonly byte[] _kek = RandomNumberGenerator.GetBytes(32);

    public Task<EnvelopeDataKey> GenerateDataKeyAsync(string keyPath, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var wrapped = new byte[60];
        RandomNumberGenerator.Fill(wrapped.AsSpan(0, 12));
        using var aes = new AesGcm(_kek, 16);
        aes.Encrypt(wrapped.AsSpan(0, 12), key, wrapped.AsSpan(12, 32), wrapped.AsSpan(44));
        return Task.FromResult(new EnvelopeDataKey(key, wrapped, keyPath, "1"));
    }

    public Task<EnvelopeDataKey> DecryptDataKeyAsync(string keyPath, byte[] wrappedKey, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        var key = new byte[32];
        using var aes = new AesGcm(_kek, 16);
        aes.Decrypt(wrappedKey.AsSpan(0, 12), wrappedKey.AsSpan(12, 32), wrappedKey.AsSpan(44), key);
        return Task.FromResult(new EnvelopeDataKey(key, wrappedKey, keyPath, "1"));
    }
}

/// <summary>Zero bytes on demand.</summary>
internal sealed class ZeroStream(long length) : Stream
{
    private long _position;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var count = (int)Math.Min(buffer.Length, length - _position);
        buffer[..count].Clear();
        _position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Counts and drops what is written.</summary>
internal sealed class CountingNullStream : Stream
{
    public long Written { get; private set; }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }
    public override void Write(byte[] buffer, int offset, int count) => Written += count;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Written += buffer.Length;
        return ValueTask.CompletedTask;
    }

    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
