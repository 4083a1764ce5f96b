using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using SecretsBroker.Benchmarks.Envelope;
using SecretsBroker.Client.Envelope;

// Usage: dotnet run -c Release -- [--gib N (throughput data, default 1)] [--flat-gib N (memory run, default 4)] [--chunk BYTES] [--rounds N]
var options = args.Chunk(2).ToDictionary(pair => pair[0], pair => pair.Length > 1 ? pair[1] : "");
var gib = double.Parse(options.GetValueOrDefault("--gib", "1"), System.Globalization.CultureInfo.InvariantCulture);
var flatGib = double.Parse(options.GetValueOrDefault("--flat-gib", "4"), System.Globalization.CultureInfo.InvariantCulture);
var chunk = int.Parse(options.GetValueOrDefault("--chunk", EnvelopeHeader.DefaultChunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture)), System.Globalization.CultureInfo.InvariantCulture);
var rounds = int.Parse(options.GetValueOrDefault("--rounds", "3"), System.Globalization.CultureInfo.InvariantCulture);
var bytes = (long)(gib * (1L << 30)) / chunk * chunk;
var keys = new LocalKeySource();
var envelope = new EnvelopeEncryption(keys, chunk);
var context = new Dictionary<string, string> { ["model"] = "bench-fake" };

Console.WriteLine($"envelope benchmark: {bytes >> 20} MiB per run, chunk {chunk} bytes, best of {rounds}; {Environment.ProcessorCount} cores, loadavg {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");

// Ciphertext to decrypt: 64 MiB sealed once, opened bytes/64MiB times.
var sample = new MemoryStream();
var sampleSize = Math.Min(bytes, 64L << 20) / chunk * chunk;
await envelope.EncryptAsync(new ZeroStream(sampleSize), sample, "local/bench", context);
var sealedSample = sample.ToArray();
var repeats = Math.Max(1, bytes / sampleSize);

var rawEncrypt = Best(rounds, () => RawAesGcm(bytes, chunk, decrypt: false));
var fileEncrypt = Best(rounds, () => Time(() => envelope.EncryptAsync(new ZeroStream(bytes), Stream.Null, "local/bench", context).GetAwaiter().GetResult()));
var rawDecrypt = Best(rounds, () => RawAesGcm(sampleSize * repeats, chunk, decrypt: true));
var fileDecrypt = Best(rounds, () => Time(() =>
{
    for (var i = 0; i < repeats; i++)
    {
        envelope.DecryptAsync(new MemoryStream(sealedSample, writable: false), Stream.Null, context).GetAwaiter().GetResult();
    }
}));
Report("encrypt", bytes, rawEncrypt, fileEncrypt);
Report("decrypt", sampleSize * repeats, rawDecrypt, fileDecrypt);

// Flat memory: encrypt a multi-GB zero stream into a pipe that is decrypted as it fills; peak RSS and GC heap stay put.
var flatBytes = (long)(flatGib * (1L << 30)) / chunk * chunk;
GC.Collect();
var rssBefore = Environment.WorkingSet;
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 4L * chunk, resumeWriterThreshold: 2L * chunk));
var sink = new CountingNullStream();
var watch = Stopwatch.StartNew();
var writer = Task.Run(async () =>
{
    await using var output = pipe.Writer.AsStream();
    await envelope.EncryptAsync(new ZeroStream(flatBytes), output, "local/bench", context);
});
var reader = Task.Run(async () =>
{
    await using var input = pipe.Reader.AsStream();
    await envelope.DecryptAsync(input, sink, context);
});
long peakHeap = 0;
while (!Task.WhenAll(writer, reader).Wait(100))
{
    peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
}
await Task.WhenAll(writer, reader);
watch.Stop();
using var process = Process.GetCurrentProcess();
Console.WriteLine($"flat memory: {flatBytes >> 20} MiB encrypted and decrypted through a pipe in {watch.Elapsed.TotalSeconds:F1} s; " +
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

static TimeSpan Time(Action action)
{
    var watch = Stopwatch.StartNew();
    action();
    return watch.Elapsed;
}

static TimeSpan Best(int rounds, Func<TimeSpan> run) => Enumerable.Range(0, rounds).Select(_ => run()).Min();

static void Report(string what, long bytes, TimeSpan raw, TimeSpan file)
{
    double MiBps(TimeSpan t) => bytes / (1024.0 * 1024.0) / t.TotalSeconds;
    Console.WriteLine($"{what}: raw AesGcm {MiBps(raw):F0} MiB/s, envelope stream {MiBps(file):F0} MiB/s, ratio {raw.TotalSeconds / file.TotalSeconds:F2}x");
}
