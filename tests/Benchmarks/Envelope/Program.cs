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

// Ciphertext to decrypt: 64 MiB sealed once, opened bytes/64MiB times.
var sample = new MemoryStream();
var sampleSize = Math.Min(bytes, 64L << 20) / chunk * chunk;
await envelope.EncryptAsync(new ZeroStream(sampleSize), sample, "local/bench", context);
var sealedSample = sample.ToArray();
var repeats = Math.Max(1, bytes / sampleSize);

// Raw and envelope alternate within each round, so both see the same machine; the ratio is the median of the rounds'.
var results = new List<(TimeSpan RawEncrypt, TimeSpan FileEncrypt, TimeSpan RawDecrypt, TimeSpan FileDecrypt)>();
for (var round = 0; round < rounds; round++)
{
    results.Add((
        RawAesGcm(bytes, chunk, decrypt: false),
        Time(() => envelope.EncryptAsync(new ZeroStream(bytes), Stream.Null, "local/bench", context).GetAwaiter().GetResult()),
        RawAesGcmDecrypt(sampleSize, repeats, chunk),
        Time(() =>
        {
            for (var i = 0; i < repeats; i++)
            {
                envelope.DecryptAsync(new MemoryStream(sealedSample, writable: false), Stream.Null, context).GetAwaiter().GetResult();
            }
        })));
}
Report("encrypt", bytes, results.Select(r => (r.RawEncrypt, r.FileEncrypt)).ToList());
Report("decrypt", sampleSize * repeats, results.Select(r => (r.RawDecrypt, r.FileDecrypt)).ToList());

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
using var sampler = new Timer(_ => peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false)), null, 0, 100);
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
    $"plaintext out {sink.Written >> 20} MiB; peak RSS {process.PeakWorkingSet64 >> 20} MiB (before {rssBefore >> 20} MiB); " +
    $"peak GC heap {peakHeap >> 20} MiB; allocated {(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) >> 20} MiB in all");
return sink.Written == flatBytes ? 0 : 1;

static TimeSpan RawAesGcm(long bytes, int chunk, bool decrypt)
{
    var key = RandomNumberGenerator.GetBytes(32);
    using var aes = new AesGcm(key, 16);
    var plaintext = new byte[chunk];
    var ciphertext = new byte[chunk];
    var tag = new byte[16];
    var nonce = new byte[12];
    aes.Encrypt(nonce, plaintext, ciphertext, tag);
    var watch = Stopwatch.StartNew();
    for (long done = 0; done < bytes; done += chunk)
    {
        if (decrypt)
        {
            aes.Decrypt(nonce, ciphertext, tag, plaintext);
        }
        else
        {
            nonce[7]++;
            aes.Encrypt(nonce, plaintext, ciphertext, tag);
        }
    }
    return watch.Elapsed;
}

// Raw decryption over the same amount of sealed data in memory as the envelope run reads (64 MiB, cold chunks), not one hot chunk.
static TimeSpan RawAesGcmDecrypt(long sampleSize, long repeats, int chunk)
{
    var key = RandomNumberGenerator.GetBytes(32);
    using var aes = new AesGcm(key, 16);
    var chunks = (int)(sampleSize / chunk);
    var sealedData = new byte[chunks * (long)(chunk + 16)];
    var plaintext = new byte[chunk];
    var nonce = new byte[12];
    for (var i = 0; i < chunks; i++)
    {
        var offset = i * (long)(chunk + 16);
        aes.Encrypt(nonce, plaintext, sealedData.AsSpan((int)offset, chunk), sealedData.AsSpan((int)offset + chunk, 16));
    }
    var watch = Stopwatch.StartNew();
    for (long r = 0; r < repeats; r++)
    {
        for (var i = 0; i < chunks; i++)
        {
            var offset = (int)(i * (long)(chunk + 16));
            aes.Decrypt(nonce, sealedData.AsSpan(offset, chunk), sealedData.AsSpan(offset + chunk, 16), plaintext);
        }
    }
    return watch.Elapsed;
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
    Console.WriteLine($"{what}: raw AesGcm {MiBps(rounds.Min(r => r.Raw)):F0} MiB/s, envelope stream {MiBps(rounds.Min(r => r.File)):F0} MiB/s (best rounds); " +
        $"ratio median {ratios[ratios.Count / 2]:F2}x (rounds: {string.Join(", ", ratios.Select(r => r.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))})");
}
