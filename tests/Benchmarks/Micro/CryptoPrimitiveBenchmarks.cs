using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// What one HMAC or AES-GCM operation costs with a fresh OpenSSL context (the one-shot APIs the read
/// path used) against a context kept per thread: a cached read computes several of each.
/// </summary>
[MemoryDiagnoser]
public class CryptoPrimitiveBenchmarks
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _data = Encoding.UTF8.GetBytes("entry\0bench\0s000\0\0");
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private readonly byte[] _cipher = new byte[64];
    private readonly byte[] _hash = new byte[32];
    private IncrementalHash _hmac = null!;
    private AesGcm _aes = null!;

    [GlobalSetup]
    public void Setup()
    {
        _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        _aes = new AesGcm(_key, 16);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _hmac.Dispose();
        _aes.Dispose();
    }

    [Benchmark]
    public int HmacOneShot() => HMACSHA256.HashData(_key, _data, _hash);

    [Benchmark]
    public int HmacReused()
    {
        _hmac.AppendData(_data);
        return _hmac.GetHashAndReset(_hash);
    }

    [Benchmark]
    public void AesGcmNewPerCall()
    {
        using var aes = new AesGcm(_key, 16);
        aes.Encrypt(_nonce, _cipher.AsSpan(0, 48), _cipher.AsSpan(0, 48), _tag);
    }

    [Benchmark]
    public void AesGcmReused() => _aes.Encrypt(_nonce, _cipher.AsSpan(0, 48), _cipher.AsSpan(0, 48), _tag);
}
