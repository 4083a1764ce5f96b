using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using SecretsBroker.Client;
using SecretsBroker.V1;
using StackExchange.Redis;

namespace SecretsBroker.Benchmarks.Fleet;

/// <summary>
/// <c>watchers</c>: <paramref name="count"/> WatchSecrets streams of one secret on one replica, opened over
/// <paramref name="connections"/> HTTP/2 connections. Reports the replica's memory per watch (managed heap after a full
/// GC, and VmRSS, before and after opening them), then how long a change takes to reach every watcher: PutSecret
/// (measured from the moment the write was sent, and from the broker's detection time in the event) and a new version
/// written to Vault by another client (found by the poller; measured from the detection time in the event). Before
/// the watches it also caches <c>cached</c> distinct secrets to report the replica's memory and Redis's per cached entry.
/// </summary>
public sealed class WatchBenchmark(int count, int connections, int writes, int backendChanges, int cached)
{
    private const string Watched = "fleet/shared";
    private readonly ConcurrentDictionary<string, Arrivals> _arrivals = new(StringComparer.Ordinal);
    private int _streamErrors;

    private sealed class Arrivals(int count)
    {
        public readonly long[] At = new long[count];
        public readonly double[] SinceDetectionMs = new double[count];
        public int Received;
    }

    public async Task<string> RunAsync(string? redisConfiguration, string logDirectory)
    {
        var report = new StringBuilder();
        void Line(string text)
        {
            Console.WriteLine(text);
            report.AppendLine(text);
        }
        Line($"watchers: {count} streams of one secret over {connections} HTTP/2 connections; {writes} PutSecret changes, {backendChanges} backend changes; {Environment.ProcessorCount} cores, loadavg {Machine.LoadAverage()}");
        var kv = new JsonObject { [Watched] = new JsonArray(new JsonObject { ["password"] = "FAKE-fleet-watch-v1" }) };
        for (var i = 0; i < cached; i++)
        {
            kv[$"fleet/cached/s{i:00000}"] = new JsonArray(new JsonObject
            {
                ["host"] = $"postgres-{i:00000}.fleet.invalid", ["username"] = $"fleet_user_{i:00000}", ["password"] = $"FAKE-fleet-cached-{i:00000}-0123456789abcdef",
            });
        }
        await using var redisProcess = redisConfiguration is null ? await RedisProcess.StartAsync() : null;
        var redis = redisConfiguration ?? redisProcess!.Configuration;
        await using var vault = await Bench.StartVaultAsync(kv);
        // Polled every second: a change written straight to Vault is found within about a second.
        await using var broker = await BrokerProcess.StartAsync("watch-broker", Bench.Address(vault), redis, TimeSpan.FromSeconds(1),
            count / connections + 100, logDirectory);
        var clients = Enumerable.Range(0, connections).Select(_ => Bench.Client(broker.Address)).ToArray();
        try
        {
            await WarmUpAsync(clients[0].Client);
            await MeasureCachedEntriesAsync(broker, clients[0].Client, redis, Line);
            await MeasureWatchesAsync(broker, Bench.Address(vault), clients.Select(c => c.Client).ToArray(), Line);
        }
        finally
        {
            foreach (var (_, channel) in clients)
            {
                channel.Dispose();
            }
        }
        return report.ToString();
    }

    private static async Task WarmUpAsync(BrokerClient client)
    {
        // JIT and first-use costs before anything is measured: watches opened and closed, writes, reads.
        for (var round = 0; round < 3; round++)
        {
            using var cancel = new CancellationTokenSource();
            var calls = Enumerable.Range(0, 50).Select(_ => client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/fleet/warm" } }, cancellationToken: cancel.Token)).ToList();
            foreach (var call in calls)
            {
                await call.ResponseHeadersAsync;
            }
            await client.PutSecretAsync("vault/fleet/warm", new Dictionary<string, string> { ["password"] = $"FAKE-fleet-warm-{round}" });
            foreach (var call in calls)
            {
                await call.ResponseStream.MoveNext(cancel.Token);
            }
            await cancel.CancelAsync();
            foreach (var call in calls)
            {
                call.Dispose();
            }
            for (var i = 0; i < 100; i++)
            {
                await client.GetSecretAsync("vault/fleet/warm");
            }
        }
    }

    private async Task MeasureCachedEntriesAsync(BrokerProcess broker, BrokerClient client, string redis, Action<string> line)
    {
        if (cached == 0)
        {
            return;
        }
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis + ",allowAdmin=true");
        var server = connection.GetServers()[0];
        var database = connection.GetDatabase();
        async Task<(long Used, long Stream)> RedisMemory()
        {
            var used = long.Parse(server.Info("memory").SelectMany(g => g).First(p => p.Key == "used_memory").Value, CultureInfo.InvariantCulture);
            var stream = await database.ExecuteAsync("MEMORY", "USAGE", "secretsbroker:audit", "SAMPLES", "0");
            return (used, stream.IsNull ? 0 : (long)stream);
        }
        var (heap0, rss0) = await broker.MemoryAsync();
        var (used0, stream0) = await RedisMemory();
        await Parallel.ForAsync(0, cached, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, ct) => await client.GetSecretAsync($"vault/fleet/cached/s{i:00000}", cancellationToken: ct));
        var served = await client.GetSecretAsync("vault/fleet/cached/s00000");
        if (served.Serving.Source != ValueSource.L1)
        {
            throw new InvalidOperationException($"a cached secret came from {served.Serving.Source}, not L1");
        }
        var (heap1, rss1) = await broker.MemoryAsync();
        var (used1, stream1) = await RedisMemory();
        // The audit stream grows with every read; its own growth (MEMORY USAGE of the stream key) is taken out.
        var redisPerEntry = (used1 - used0 - (stream1 - stream0)) / (double)cached;
        line(string.Create(CultureInfo.InvariantCulture,
            $"cached secrets: {cached} (3 fields, about 110 bytes of values each): replica managed heap +{(heap1 - heap0) / (double)cached:0} B per cached secret, VmRSS +{(rss1 - rss0) / (double)cached:0} B; Redis used_memory +{redisPerEntry:0} B per cached entry (audit stream growth {(stream1 - stream0) / 1024.0:0} KiB taken out)"));
    }

    private async Task MeasureWatchesAsync(BrokerProcess broker, Uri vault, BrokerClient[] clients, Action<string> line)
    {
        for (var wait = Stopwatch.StartNew(); await broker.WatchesAsync() != 0 && wait.Elapsed < TimeSpan.FromSeconds(30);)
        {
            await Task.Delay(50);
        }
        var (heap0, rss0) = await broker.MemoryAsync();
        using var cancel = new CancellationTokenSource();
        var readers = new Task[count];
        var openClock = Stopwatch.StartNew();
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            var client = clients[i % clients.Length];
            var call = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/" + Watched } }, cancellationToken: cancel.Token);
            await call.ResponseHeadersAsync;
            readers[i] = ReadAsync(call, client, i, cancel.Token);
        });
        openClock.Stop();
        // A watch refused with UNAVAILABLE is opened again by its reader.
        var served = 0;
        for (var wait = Stopwatch.StartNew(); (served = await broker.WatchesAsync()) != count && wait.Elapsed < TimeSpan.FromMinutes(1);)
        {
            await Task.Delay(100);
        }
        if (served != count)
        {
            throw new InvalidOperationException($"the replica serves {served} watches, not {count}");
        }
        line($"watch opens refused and retried: {Volatile.Read(ref _streamErrors)}");
        var (heap1, rss1) = await broker.MemoryAsync();
        line(string.Create(CultureInfo.InvariantCulture,
            $"opened {count} watches in {openClock.Elapsed.TotalSeconds:0.0} s; replica managed heap {heap0 / 1048576.0:0.0} -> {heap1 / 1048576.0:0.0} MiB, VmRSS {rss0 / 1048576.0:0.0} -> {rss1 / 1048576.0:0.0} MiB"));
        line(string.Create(CultureInfo.InvariantCulture,
            $"memory per watch: managed heap {(heap1 - heap0) / (double)count:0} B, VmRSS {(rss1 - rss0) / (double)count:0} B (the broker's subscription, its gRPC call and its HTTP/2 stream)"));

        var cpu0 = broker.CpuSeconds();
        var clientCpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var fromSend = new List<double>();
        var fromDetection = new List<double>();
        var lastWatcher = new List<double>();
        var missing = 0;
        for (var w = 0; w < writes; w++)
        {
            var sent = Stopwatch.GetTimestamp();
            var written = await clients[0].PutSecretAsync("vault/" + Watched, new Dictionary<string, string> { ["password"] = $"FAKE-fleet-watch-put-{w}" });
            var answered = Stopwatch.GetTimestamp();
            var arrivals = _arrivals.GetOrAdd(written.Version, _ => new Arrivals(count));
            await Bench.WaitUntilAsync(() => Volatile.Read(ref arrivals.Received) >= count, TimeSpan.FromSeconds(60));
            missing += count - Volatile.Read(ref arrivals.Received);
            var got = arrivals.At.Where(t => t != 0).ToArray();
            fromSend.AddRange(got.Select(t => Bench.Ms(sent, t)));
            fromDetection.AddRange(arrivals.SinceDetectionMs.Where((_, i) => arrivals.At[i] != 0));
            lastWatcher.Add(Bench.Ms(sent, got.Max()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  put {w}: version {written.Version} answered after {Bench.Ms(sent, answered):0.0} ms, last of {got.Length} watchers after {lastWatcher[^1]:0.0} ms"));
            await Task.Delay(200);
        }
        var cpuPut = broker.CpuSeconds() - cpu0;
        var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - clientCpu0).TotalSeconds;
        line($"PutSecret -> every watcher, from the write being sent: {Bench.Summary(fromSend)}");
        line($"PutSecret -> every watcher, from the broker's detection time in the event: {Bench.Summary(fromDetection)}");
        line($"PutSecret -> the last of the {count} watchers, per write: {Bench.Summary(lastWatcher)}");
        line(string.Create(CultureInfo.InvariantCulture, $"replica CPU during the {writes} fan-outs (with 200 ms pauses): {cpuPut:0.00} s, {cpuPut * 1e6 / Math.Max(1, writes * count):0.0} us per delivered event; this client's CPU {clientCpu:0.00} s ({clientCpu * 1e6 / Math.Max(1, writes * count):0.0} us per received event); watchers without their event: {missing}; stream errors: {_streamErrors}"));

        var polled = new List<double>();
        var polledLast = new List<double>();
        for (var b = 0; b < backendChanges; b++)
        {
            var version = await Bench.WriteKvAsync(vault, Watched, $"FAKE-fleet-watch-vault-{b}");
            var arrivals = _arrivals.GetOrAdd(version, _ => new Arrivals(count));
            await Bench.WaitUntilAsync(() => Volatile.Read(ref arrivals.Received) >= count, TimeSpan.FromSeconds(60));
            missing += count - Volatile.Read(ref arrivals.Received);
            var detection = arrivals.SinceDetectionMs.Where((_, i) => arrivals.At[i] != 0).ToArray();
            polled.AddRange(detection);
            polledLast.Add(detection.Max());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  vault write {b}: version {version}, last of {detection.Length} watchers {detection.Max():0.0} ms after detection"));
        }
        if (backendChanges > 0)
        {
            line($"backend change (found by the 1 s poll) -> every watcher, from the broker's detection time: {Bench.Summary(polled)}");
            line($"backend change -> the last watcher, per change: {Bench.Summary(polledLast)}; watchers without an event in all: {missing}");
        }
        line($"loadavg at the end: {Machine.LoadAverage()}");
        await cancel.CancelAsync();
        await Task.WhenAll(readers);
    }

    /// <summary>Reads one watcher's events; a watch that fails (the replica answered UNAVAILABLE) is opened again, as a client would.</summary>
    private async Task ReadAsync(AsyncServerStreamingCall<SecretEvent> call, BrokerClient client, int index, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
                {
                    var at = Stopwatch.GetTimestamp();
                    var arrivals = _arrivals.GetOrAdd(e.Version, _ => new Arrivals(count));
                    // Wall clocks of this process and the replica's: the same machine's clock.
                    arrivals.SinceDetectionMs[index] = (DateTimeOffset.UtcNow - e.Time.ToDateTimeOffset()).TotalMilliseconds;
                    arrivals.At[index] = at;
                    Interlocked.Increment(ref arrivals.Received);
                }
                return;
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException)
            {
                Interlocked.Increment(ref _streamErrors);
            }
            finally
            {
                call.Dispose();
            }
            await Task.Delay(100, CancellationToken.None);
            call = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/" + Watched } }, cancellationToken: cancellationToken);
        }
    }
}
