using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>The L2 envelope (AES-256-GCM seal/open with the Redis key as associated data) and the HMAC cache key name every read computes.</summary>
[MemoryDiagnoser]
public class CacheEnvelopeBenchmarks
{
    private readonly MountDefinition _mount = new("bench", "local");
    private CacheKeyRing _ring = null!;
    private byte[] _plaintext = null!;
    private byte[] _envelope = null!;
    private string _key = null!;

    /// <summary>Size of the serialized cache entry (the benchmark secret's JSON is about 250 bytes).</summary>
    [Params(256, 4096)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _ring = new CacheKeyRing(Options.Create(new CacheOptions
        {
            Encryption = new CacheEncryptionOptions
            {
                NameKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                Keys = [new CacheKeyOptions { Id = "bench-1", Secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Active = true }],
            },
        }));
        _plaintext = RandomNumberGenerator.GetBytes(Size);
        _key = "sb:" + _ring.EntryKey(_mount, "s000", VersionSelector.Latest);
        _envelope = _ring.Seal(_key, _plaintext);
    }

    [Benchmark]
    public byte[] Seal() => _ring.Seal(_key, _plaintext);

    [Benchmark]
    public byte[]? Open()
    {
        _ring.TryUnseal(_key, _envelope, out var plaintext, out _);
        return plaintext;
    }

    [Benchmark]
    public string EntryKey() => _ring.EntryKey(_mount, "s000", VersionSelector.Latest);
}
