using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;
using Xunit.Abstractions;

namespace SecretsBroker.Broker.Tests.Leases;

/// <summary>Runs only when <c>LEASE_BENCHMARK=1</c>: a measurement, not a pass/fail test.</summary>
public sealed class BenchmarkFactAttribute : FactAttribute
{
    public BenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("LEASE_BENCHMARK") != "1")
        {
            Skip = "benchmark: run with LEASE_BENCHMARK=1 (see docs/benchmarks.md, Leases)";
        }
    }
}

/// <summary>
/// 10,000 leases on one KeepAlive stream against the in-process Vault emulator (ttl 30 s): managed memory
/// per attached lease, and how late renewals start after their due time (p50/p99) over two renewal rounds.
/// </summary>
public sealed class LeaseBenchmark(ITestOutputHelper output)
{
    private const string Seed = """{ "database": { "roles": { "bench": { "default_ttl": "30s", "max_ttl": "1h" } } } }""";

    [BenchmarkFact]
    public async Task Ten_thousand_leases_memory_and_renewal_lateness()
    {
        var count = int.Parse(Environment.GetEnvironmentVariable("LEASE_BENCHMARK_COUNT") ?? "10000", CultureInfo.InvariantCulture);
        var redisWanted = Environment.GetEnvironmentVariable("LEASE_BENCHMARK_REDIS") == "1";
        await using var redis = redisWanted ? await RedisServer.StartAsync() : null;
        await using var vault = await VaultEmulatorHost.StartAsync(Seed);
        var settings = LeaseTestEnvironment.Broker(vault, redis, grace: "00:01:00");
        settings["Broker:Leases:RenewJitter"] = "0.1";
        settings["Broker:Audit:Strict"] = "false";
        await using var broker = await BrokerHost.StartAsync(settings, configureServices: b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        // Lateness as the broker exports it (secretsbroker.lease.renewal.lateness), read with a MeterListener.
        var lateness = new ConcurrentQueue<double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "secretsbroker.lease.renewal.lateness")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => lateness.Enqueue(value));
        listener.Start();
        var client = broker.CreateClient().Raw;

        var issueClock = Stopwatch.StartNew();
        var ids = new string[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            ids[i] = (await client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/bench" }, cancellationToken: ct)).LeaseId);
        issueClock.Stop();

        using var cancel = new CancellationTokenSource();
        using var call = client.KeepAlive(cancellationToken: cancel.Token);
        await call.ResponseHeadersAsync;
        var attached = 0;
        var renewed = 0;
        var errors = 0;
        var reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in call.ResponseStream.ReadAllAsync(cancel.Token))
                {
                    _ = e.Type switch
                    {
                        LeaseEventType.Attached => Interlocked.Increment(ref attached),
                        LeaseEventType.Renewed => Interlocked.Increment(ref renewed),
                        _ => Interlocked.Increment(ref errors),
                    };
                }
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException)
            {
            }
        });

        var before = Measure();
        var attachClock = Stopwatch.StartNew();
        foreach (var chunk in ids.Chunk(500))
        {
            await call.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { chunk } });
        }
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref attached) + Volatile.Read(ref errors) >= count, TimeSpan.FromMinutes(2), "all leases answered");
        Assert.Equal(count, Volatile.Read(ref attached));
        attachClock.Stop();
        var after = Measure();
        var perLease = (after - before) / (double)count;

        var runClock = Stopwatch.StartNew();
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref renewed) >= 2 * count, TimeSpan.FromMinutes(3), "two renewal rounds");
        runClock.Stop();
        var sorted = lateness.Order().ToArray();
        double Percentile(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

        var report = string.Create(CultureInfo.InvariantCulture, $"""
            leases: {count}, registry: {(redisWanted ? "redis" : "in-memory")}, processors: {Environment.ProcessorCount}
            issue: {issueClock.Elapsed.TotalSeconds:0.0} s ({count / issueClock.Elapsed.TotalSeconds:0} /s, 32 concurrent)
            attach: {attachClock.Elapsed.TotalSeconds:0.00} s
            managed memory per attached lease: {perLease:0} bytes ({(after - before) / 1024.0 / 1024.0:0.0} MiB for {count})
            renewals: {sorted.Length} in {runClock.Elapsed.TotalSeconds:0.0} s, errors/other events: {errors}
            renewal lateness ms: p50 {Percentile(0.50):0.0}, p90 {Percentile(0.90):0.0}, p99 {Percentile(0.99):0.0}, max {sorted[^1]:0.0}
            """);
        output.WriteLine(report);
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, $"lease-benchmark-{(redisWanted ? "redis" : "memory")}.txt"), report);
        await cancel.CancelAsync();
        await reader;
    }

    private static long Measure()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
