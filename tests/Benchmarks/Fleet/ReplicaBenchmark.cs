using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SecretsBroker.Client;

namespace SecretsBroker.Benchmarks.Fleet;

/// <summary>
/// <c>replicas</c>: three replicas on one Redis, one Vault. Readers poll GetSecret of one secret on every replica without
/// pause; each iteration writes a new version (PutSecret) on one replica in turn, and once the write is answered the
/// benchmark looks at the reads the other two replicas served: how long after the answer a read that <em>started</em>
/// after it could still get the old version ("stale window", 0 when none did). The poller is off (1 h), so only the
/// write path (cache removal, backplane, watch announcement) tells the other replicas.
/// </summary>
public sealed class ReplicaBenchmark(int iterations, int readersPerReplica)
{
    private const string Path = "fleet/replicated";
    private const int Replicas = 3;

    private sealed record Read(int Replica, long Started, long Ended, int Version);

    private readonly ConcurrentQueue<Read> _reads = new();
    private readonly int[] _newestSeen = new int[Replicas];
    private int _readErrors;

    public async Task<string> RunAsync(string? redisConfiguration, string logDirectory)
    {
        var report = new StringBuilder();
        void Line(string text)
        {
            Console.WriteLine(text);
            report.AppendLine(text);
        }
        Line($"replicas: {Replicas} on one Redis, {readersPerReplica} readers polling each, {iterations} writes; {Environment.ProcessorCount} cores, loadavg {Machine.LoadAverage()}");
        await using var redisProcess = redisConfiguration is null ? await RedisProcess.StartAsync() : null;
        var redis = redisConfiguration ?? redisProcess!.Configuration;
        await using var vault = await Bench.StartVaultAsync(new JsonObject { [Path] = new JsonArray(new JsonObject { ["password"] = "FAKE-fleet-replica-v1" }) });
        var brokers = new BrokerProcess[Replicas];
        for (var r = 0; r < Replicas; r++)
        {
            brokers[r] = await BrokerProcess.StartAsync($"replica-{r}", Bench.Address(vault), redis, TimeSpan.FromHours(1), 100, logDirectory);
        }
        var clients = brokers.Select(b => Bench.Client(b.Address)).ToArray();
        using var stop = new CancellationTokenSource();
        try
        {
            // Warm-up: every replica reads and writes before anything is measured.
            for (var round = 0; round < 20; round++)
            {
                await clients[round % Replicas].Client.PutSecretAsync("vault/" + Path, new Dictionary<string, string> { ["password"] = $"FAKE-fleet-replica-warm-{round}" });
                foreach (var (client, _) in clients)
                {
                    for (var i = 0; i < 20; i++)
                    {
                        await client.GetSecretAsync("vault/" + Path);
                    }
                }
            }
            var readers = Enumerable.Range(0, Replicas * readersPerReplica)
                .Select(i => Task.Run(() => ReadLoopAsync(clients[i % Replicas].Client, i % Replicas, stop.Token))).ToArray();
            var cpu0 = brokers.Sum(b => b.CpuSeconds());
            var results = new List<(int Writer, int Version, long Answered)>();
            var notConverged = 0;
            var random = new Random(22);
            for (var n = 0; n < iterations; n++)
            {
                var writer = n % Replicas;
                var written = await clients[writer].Client.PutSecretAsync("vault/" + Path, new Dictionary<string, string> { ["password"] = $"FAKE-fleet-replica-{n}" });
                var answered = Stopwatch.GetTimestamp();
                var version = int.Parse(written.Version, CultureInfo.InvariantCulture);
                results.Add((writer, version, answered));
                // Every replica has served the new version, then a pause so each L1 holds it again before the next write.
                var clock = Stopwatch.StartNew();
                while (Enumerable.Range(0, Replicas).Any(r => Volatile.Read(ref _newestSeen[r]) < version) && clock.Elapsed < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(1);
                }
                if (clock.Elapsed >= TimeSpan.FromSeconds(5))
                {
                    notConverged++;
                }
                await Task.Delay(20 + random.Next(30));
            }
            await stop.CancelAsync();
            await Task.WhenAll(readers);
            var cpu = brokers.Sum(b => b.CpuSeconds()) - cpu0;
            Analyse(results, Line);
            Line(string.Create(CultureInfo.InvariantCulture,
                $"reads: {_reads.Count} in all ({_reads.Count / (double)Replicas / iterations:0} per replica per write); read errors: {_readErrors}; writes not seen by every replica within 5 s: {notConverged}; replicas' CPU {cpu:0.0} s; loadavg at the end {Machine.LoadAverage()}"));
        }
        finally
        {
            foreach (var (_, channel) in clients)
            {
                channel.Dispose();
            }
            foreach (var broker in brokers)
            {
                await broker.DisposeAsync();
            }
        }
        return report.ToString();
    }

    private void Analyse(List<(int Writer, int Version, long Answered)> results, Action<string> line)
    {
        var byReplica = _reads.GroupBy(r => r.Replica).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Started).ToArray());
        var others = new List<double>();
        var own = new List<double>();
        var firstNew = new List<double>();
        var staleReads = 0;
        for (var i = 0; i < results.Count; i++)
        {
            var (writer, version, answered) = results[i];
            var until = i + 1 < results.Count ? results[i + 1].Answered : long.MaxValue;
            for (var r = 0; r < Replicas; r++)
            {
                var after = byReplica[r].Where(x => x.Started >= answered && x.Started < until).ToArray();
                var stale = after.Where(x => x.Version < version).ToArray();
                staleReads += r == writer ? 0 : stale.Length;
                var window = stale.Length == 0 ? 0 : Bench.Ms(answered, stale.Max(x => x.Started));
                (r == writer ? own : others).Add(window);
                if (r != writer && after.FirstOrDefault(x => x.Version >= version) is { } first)
                {
                    firstNew.Add(Bench.Ms(answered, first.Ended));
                }
            }
        }
        line($"stale window on the two other replicas (last read started after the answer that got the old version): {Bench.Summary(others)}");
        line(string.Create(CultureInfo.InvariantCulture, $"  samples with no stale read at all: {others.Count(x => x == 0)} of {others.Count}; stale reads in all: {staleReads}"));
        line($"first read of the new version answered on the other replicas, after the write's answer: {Bench.Summary(firstNew)}");
        line($"stale window on the writing replica itself: {Bench.Summary(own)}");
    }

    private async Task ReadLoopAsync(BrokerClient client, int replica, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                var secret = await client.GetSecretAsync("vault/" + Path, cancellationToken: cancellationToken);
                var version = int.Parse(secret.Version, CultureInfo.InvariantCulture);
                _reads.Enqueue(new Read(replica, started, Stopwatch.GetTimestamp(), version));
                InterlockedMax(ref _newestSeen[replica], version);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Grpc.Core.RpcException)
            {
                Interlocked.Increment(ref _readErrors);
            }
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var current = Volatile.Read(ref target); current < value; current = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, current) == current)
            {
                return;
            }
        }
    }
}
