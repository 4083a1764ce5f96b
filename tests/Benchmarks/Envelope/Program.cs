using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using SecretsBroker.Benchmarks.Envelope;
using SecretsBroker.Client.Envelope;

// Usage: dotnet run -c Release -- [--gib N (throughput data, default 1)] [--flat-gib N (memory run, default 4)] [--chunk BYTES] [--rounds N (default 5)]
var options = args.Chunk(2).ToDictionary(pair => pair[0], pair => pair.Length > 1 ? pair[1] : "");
var gib = double.Parse(options.GetValueOrDefault("--gib", "1"), System.Globalization.CultureInfo.InvariantCulture);
var flatGib = double.Parse(options.GetValueOrDefault("--flat-gib", "4"), System.Globalization.CultureInfo.InvariantCulture);
var chunk = int.Parse(options.GetValueOrDefault("--chunk", EnvelopeHeader.DefaultChunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture)), System.Globalization.CultureInfo.InvariantCulture);
var rounds = int.Parse(options.GetValueOrDefault("--rounds", "5"), System.Globalization.CultureInfo.InvariantCulture);
var bytes = (long)(gib * (1L << 30)) / chunk * chunk;
var keys = new LocalKeySource();
var envelope = new EnvelopeEncryption(keys, chunk);
var context = new Dictionary<string, string> { ["model"] = "bench-fake" };

Console.WriteLine($"envelope benchmark: {bytes >> 20} MiB per run, chunk {chunk} bytes, {rounds} rounds; {Environment.ProcessorCount} cores, loadavg {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");

// Ciphertext to decrypt: 64 MiB sealed once, opened bytes/64MiB times, by the envelope reader and (as bare
// AES-GCM chunks, no header) by the raw baseline, each from a MemoryStream to Stream.Null: the same I/O on both sides.
var sample = new MemoryStream();
var sampleSize = Math.Min(bytes, 64L << 20) / chunk * chunk;
await envelope.EncryptAsync(new ZeroStream(sampleSize), sample, "local/bench", context);
var sealedSample = sample.ToArray();
var rawKey = RandomNumberGenerator.GetBytes(32);
var rawSample = RawSeal(rawKey, sampleSize, chunk);
var repeats = Math.Max(1, bytes / sampleSize);

// Raw and envelope alternate within each round, 64 MiB at a time, so both see the same machine (its load changes
// by the second here); the ratio is the median of the rounds'. "in memory" is raw decryption of the sealed bytes
// where they lie (no stream read into a buffer): for reference only.
var results = new List<(TimeSpan RawEncrypt, TimeSpan FileEncrypt, TimeSpan RawDecrypt, TimeSpan FileDecrypt, TimeSpan InMemoryDecrypt)>();
for (var round = 0; round < rounds; round++)
{
    var times = new TimeSpan[5];
    for (var i = 0; i < repeats; i++)
    {
        times[0] += Time(() => RawEncrypt(new ZeroStream(sampleSize), Stream.Null, chunk));
        times[1] += Time(() => envelope.EncryptAsync(new ZeroStream(sampleSize), Stream.Null, "local/bench", context).GetAwaiter().GetResult());
        times[2] += Time(() => RawDecrypt(rawKey, new MemoryStream(rawSample, writable: false), Stream.Null, chunk));
        times[3] += Time(() => envelope.DecryptAsync(new MemoryStream(sealedSample, writable: false), Stream.Null, context).GetAwaiter().GetResult());
        times[4] += Time(() => RawDecryptInMemory(rawKey, rawSample, chunk));
    }
    results.Add((times[0], times[1], times[2], times[3], times[4]));
    Console.WriteLine($"round {round + 1}: loadavg {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
}
Report("encrypt", sampleSize * repeats, results.Select(r => (r.RawEncrypt, r.FileEncrypt)).ToList());
Report("decrypt", sampleSize * repeats, results.Select(r => (r.RawDecrypt, r.FileDecrypt)).ToList());
Report("decrypt against raw in memory (no stream read; reference)", sampleSize * repeats, results.Select(r => (r.InMemoryDecrypt, r.FileDecrypt)).ToList());

// Flat memory: a multi-GB file of zeros encrypted to disk and decrypted back; peak RSS and GC heap stay put.
var flatBytes = (long)(flatGib * (1L << 30)) / chunk * chunk;
var directory = Directory.CreateTempSubdirectory("envelope-bench-");
var path = Path.Combine(directory.FullName, "zeros.sbef");
GC.Collect();
var rssBefore = Environment.WorkingSet;
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var sink = new CountingNullStream();
var watch = Stopwatch.StartNew();
long peakHeap = 0;
long peakRss = 0;
using var sampler = new Timer(_ =>
{
    peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
    peakRss = Math.Max(peakRss, Environment.WorkingSet);
}, null, 0, 100);
try
{
    await using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
    {
        await envelope.EncryptAsync(new ZeroStream(flatBytes), output, "local/bench", context);
    }
    await using (var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true))
    {
        await envelope.DecryptAsync(input, sink, context);
    }
}
finally
{
    directory.Delete(recursive: true);
}
watch.Stop();
using var process = Process.GetCurrentProcess();
Console.WriteLine($"flat memory: {flatBytes >> 20} MiB encrypted to a file and decrypted back in {watch.Elapsed.TotalSeconds:F1} s; " +
    $"plaintext out {sink.Written >> 20} MiB; RSS {rssBefore >> 20} MiB before, at most {peakRss >> 20} MiB during (sampled every 100 ms; process peak {process.PeakWorkingSet64 >> 20} MiB); " +
    $"peak GC heap {peakHeap >> 20} MiB; allocated {(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) >> 20} MiB in all");
return sink.Written == flatBytes ? 0 : 1;

// Raw AES-256-GCM over the same chunks with the same I/O as the envelope: read a chunk from the stream into a
// buffer, seal it there (tag appended), write it; a nonce per chunk. No header, no read-ahead, no last-chunk flag.
static void RawEncrypt(Stream source, Stream destination, int chunk)
{
    using var aes = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);
    var buffer = new byte[chunk + 16];
    var nonce = new byte[12];
    for (uint index = 0; ; index++)
    {
        var count = source.ReadAtLeast(buffer.AsSpan(0, chunk), chunk, throwOnEndOfStream: false);
        if (count == 0)
        {
            break;
        }
        BinaryPrimitives.WriteUInt32BigEndian(nonce.AsSpan(7), index);
        aes.Encrypt(nonce, buffer.AsSpan(0, count), buffer.AsSpan(0, count), buffer.AsSpan(count, 16));
        destination.Write(buffer, 0, count + 16);
    }
}

// Read a sealed chunk into a buffer, open it there, write the plaintext.
static void RawDecrypt(byte[] key, Stream source, Stream destination, int chunk)
{
    using var aes = new AesGcm(key, 16);
    var buffer = new byte[chunk + 16];
    var nonce = new byte[12];
    for (uint index = 0; ; index++)
    {
        var count = source.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (count == 0)
        {
            break;
        }
        BinaryPrimitives.WriteUInt32BigEndian(nonce.AsSpan(7), index);
        aes.Decrypt(nonce, buffer.AsSpan(0, count - 16), buffer.AsSpan(count - 16, 16), buffer.AsSpan(0, count - 16));
        destination.Write(buffer, 0, count - 16);
    }
}

// The sealed bytes decrypted where they lie into one plaintext buffer: no stream, no copy in.
static void RawDecryptInMemory(byte[] key, byte[] sealedData, int chunk)
{
    using var aes = new AesGcm(key, 16);
    var plaintext = new byte[chunk];
    var nonce = new byte[12];
    uint index = 0;
    for (var offset = 0; offset < sealedData.Length; offset += chunk + 16, index++)
    {
        BinaryPrimitives.WriteUInt32BigEndian(nonce.AsSpan(7), index);
        aes.Decrypt(nonce, sealedData.AsSpan(offset, chunk), sealedData.AsSpan(offset + chunk, 16), plaintext);
    }
}

static byte[] RawSeal(byte[] key, long size, int chunk)
{
    var output = new MemoryStream();
    using var aes = new AesGcm(key, 16);
    var buffer = new byte[chunk + 16];
    var nonce = new byte[12];
    for (uint index = 0; index < size / chunk; index++)
    {
        Array.Clear(buffer);
        BinaryPrimitives.WriteUInt32BigEndian(nonce.AsSpan(7), index);
        aes.Encrypt(nonce, buffer.AsSpan(0, chunk), buffer.AsSpan(0, chunk), buffer.AsSpan(chunk, 16));
        output.Write(buffer);
    }
    return output.ToArray();
}

static TimeSpan Time(Action action)
{
    var watch = Stopwatch.StartNew();
    action();
    return watch.Elapsed;
}

static void Report(string what, long bytes, List<(TimeSpan Raw, TimeSpan File)> rounds)
{
    double MiBps(TimeSpan t) => bytes / (1024.0 * 1024.0) / t.TotalSeconds;
    var ratios = rounds.Select(r => r.Raw.TotalSeconds / r.File.TotalSeconds).Order().ToList();
    Console.WriteLine($"{what}: raw AesGcm {MiBps(rounds.Min(r => r.Raw)):F0} MiB/s, envelope {MiBps(rounds.Min(r => r.File)):F0} MiB/s (best rounds); " +
        $"ratio median {ratios[ratios.Count / 2]:F2}x (rounds: {string.Join(", ", ratios.Select(r => r.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))})");
}
