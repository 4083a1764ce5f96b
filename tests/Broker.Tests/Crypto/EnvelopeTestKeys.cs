using System.Security.Cryptography;
using System.Text;
using SecretsBroker.Client.Envelope;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>
/// Locally generated data keys for the format's unit tests: 256-bit keys wrapped with AES-256-GCM under a
/// per-instance key-encryption key, the key path and context as AAD (what the broker's local keyring binds).
/// A wrapped key that does not open raises <see cref="CryptographicException"/>, as a refusing key store would.
/// </summary>
internal sealed class EnvelopeTestKeys(string keyPath = "local/test-envelope") : IEnvelopeKeySource
{
    private readonly byte[] _kek = RandomNumberGenerator.GetBytes(32);

    public string KeyPath => keyPath;

    public int Unwraps { get; private set; }

    public Task<EnvelopeDataKey> GenerateDataKeyAsync(string path, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        var dataKey = RandomNumberGenerator.GetBytes(32);
        var wrapped = new byte[12 + 32 + 16];
        RandomNumberGenerator.Fill(wrapped.AsSpan(0, 12));
        using var aes = new AesGcm(_kek, 16);
        aes.Encrypt(wrapped.AsSpan(0, 12), dataKey, wrapped.AsSpan(12, 32), wrapped.AsSpan(44, 16), Aad(path, context));
        return Task.FromResult(new EnvelopeDataKey(dataKey, wrapped, path, "1"));
    }

    public Task<EnvelopeDataKey> DecryptDataKeyAsync(string path, byte[] wrappedKey, IReadOnlyDictionary<string, string> context, CancellationToken cancellationToken)
    {
        Unwraps++;
        if (wrappedKey.Length != 60)
        {
            throw new CryptographicException("wrapped key of the wrong length");
        }
        var dataKey = new byte[32];
        using var aes = new AesGcm(_kek, 16);
        aes.Decrypt(wrappedKey.AsSpan(0, 12), wrappedKey.AsSpan(12, 32), wrappedKey.AsSpan(44, 16), dataKey, Aad(path, context));
        return Task.FromResult(new EnvelopeDataKey(dataKey, wrappedKey, path, "1"));
    }

    private static byte[] Aad(string path, IReadOnlyDictionary<string, string> context) =>
        Encoding.UTF8.GetBytes(path + "\n" + string.Join("\n", EnvelopeHeader.Canonical(context).Select(e => e.Key + "=" + e.Value)));
}

/// <summary>A stream of <paramref name="length"/> zero bytes that allocates nothing, completing synchronously.</summary>
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

/// <summary>A sink that keeps only a count of the bytes written and whether any was non-zero.</summary>
internal sealed class CountingSink : Stream
{
    public long Written { get; private set; }
    public bool SawNonZero { get; private set; }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Written += buffer.Length;
        SawNonZero |= buffer.ContainsAnyExcept((byte)0);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush() { }
    // Stream's default FlushAsync queues Flush to the thread pool; this sink completes synchronously throughout.
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
