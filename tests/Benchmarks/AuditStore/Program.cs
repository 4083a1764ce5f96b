using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Ingestion;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;
using SecretsBroker.Benchmarks.AuditStore;
using StackExchange.Redis;

// dotnet run -c Release -- --store sqlite|postgres [--connection CS] [--dir DIR] [--ingest 200000] [--batch 200] [--events 1000000] [--queries 40] [--seed 7]
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var provider = config["store"] ?? "sqlite";
var ingestCount = int.Parse(config["ingest"] ?? "200000", CultureInfo.InvariantCulture);
var batchSize = int.Parse(config["batch"] ?? "200", CultureInfo.InvariantCulture);
var loadCount = long.Parse(config["events"] ?? "1000000", CultureInfo.InvariantCulture);
var queries = int.Parse(config["queries"] ?? "40", CultureInfo.InvariantCulture);
var directory = config["dir"] ?? Path.Combine(Path.GetTempPath(), "audit-store-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(directory);

using var key = AuditKey.FromBase64(Generator.KeyBase64);
var generator = new Generator(key);

IAuditStore Open(string name) => provider == "postgres"
    ? new PostgresAuditStore(Options.Create(new StoreOptions { Provider = "postgres", ConnectionString = Databases.Connection(config["connection"]!, name) }), TimeProvider.System)
    : new AuditStore(Options.Create(new StoreOptions { Path = name + ".db" }), new BenchEnvironment(directory), TimeProvider.System);

// --check SQLITE_FILE|CONNECTION_STRING: how many records a store holds and whether its chain verifies (tests/Benchmarks/ingest.py).
if (config["check"] is { } checkTarget)
{
    using IAuditStore checkedStore = provider == "postgres"
        ? new PostgresAuditStore(Options.Create(new StoreOptions { Provider = "postgres", ConnectionString = checkTarget }), TimeProvider.System)
        : new AuditStore(Options.Create(new StoreOptions { Path = checkTarget }), new BenchEnvironment(directory), TimeProvider.System);
    var verified = checkedStore.Verify(default);
    Console.WriteLine($"records={verified.RecordsChecked} verify ok={verified.Ok} {verified.Detail}");
    return verified.Ok ? 0 : 1;
}

Console.WriteLine($"audit store benchmark: {provider}, {Environment.ProcessorCount} cores, loadavg {File.ReadAllText("/proc/loadavg").Trim()}");

// 1. Ingestion: stream entries as brokers write them (event + MAC), decoded (MAC verified, id checked) and appended in batches.
if (ingestCount > 0)
{
    await Databases.CreateAsync(provider, config["connection"], "ingest");
    using var store = Open("ingest");
    var decoder = new StreamEntryDecoder(key, new AuditEventAuthenticator([AuditEventMacKey.FromAuditKey(Generator.KeyBase64)]));
    var macKey = AuditEventMacKey.FromAuditKey(Generator.KeyBase64);
    var entries = Enumerable.Range(0, ingestCount).Select(i =>
    {
        var bytes = generator.Make(i, DateTimeOffset.UtcNow).ToByteArray();
        return new StreamEntry($"{i + 1}-0", [new(AuditStream.EventField, bytes), new(AuditStream.MacField, macKey.Compute(bytes))]);
    }).ToArray();
    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
    var watch = Stopwatch.StartNew();
    var decoding = TimeSpan.Zero;
    foreach (var batch in entries.Chunk(batchSize))
    {
        var decodeStart = watch.Elapsed;
        var events = batch.SelectMany(decoder.Decode).Select(d => d.Event!).ToList();
        decoding += watch.Elapsed - decodeStart;
        await store.AppendAsync(events, [], default);
    }
    watch.Stop();
    // The two stages timed apart (a profile of where ingestion spends its time; Redis is not part of it).
    Console.WriteLine($"ingest: {ingestCount} events in batches of {batchSize}: {ingestCount / watch.Elapsed.TotalSeconds:F0} events/s ({watch.Elapsed.TotalSeconds:F1} s: "
        + $"decode {decoding.TotalSeconds:F1} s, append {(watch.Elapsed - decoding).TotalSeconds:F1} s; "
        + $"CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds / ingestCount:F0} us/event), verify ok={store.Verify(default).Ok}");
}

// 2. Query latency over a bulk-loaded store (COPY for PostgreSQL, batched inserts for SQLite).
if (loadCount > 0)
{
    // --reuse-start UNIX_NS: query the store a previous run loaded (its first event's time; the store kept with --dir) without loading it again.
    var reuseStart = config["reuse-start"];
    if (reuseStart is null)
    {
        await Databases.CreateAsync(provider, config["connection"], "query");
    }
    using var store = Open("query");
    var start = reuseStart is null ? DateTimeOffset.UtcNow.AddDays(-30) : DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(reuseStart, CultureInfo.InvariantCulture) / 1_000_000);
    var step = TimeSpan.FromDays(30) / loadCount;
    var watch = Stopwatch.StartNew();
    if (reuseStart is not null)
    {
        // Loaded already.
    }
    else if (provider == "postgres")
    {
        await BulkLoad.PostgresAsync(Databases.Connection(config["connection"]!, "query"), generator, loadCount, start, step);
    }
    else
    {
        BulkLoad.Sqlite(Path.Combine(directory, "query.db"), generator, loadCount, start, step);
    }
    Console.WriteLine($"bulk load: {loadCount} events in {watch.Elapsed.TotalSeconds:F0} s");
    // --seed: other callers, teams and hours than an earlier run over the same store (whose pages the OS may still cache).
    var random = new Random(int.Parse(config["seed"] ?? "7", CultureInfo.InvariantCulture));
    (string Name, Func<QueryFilter> Filter)[] kinds =
    [
        ("caller", () => new QueryFilter(0, 1000, Caller: $"svc-{random.Next(Generator.Callers)}")),
        ("time range (1 h)", () =>
        {
            var from = start + TimeSpan.FromHours(random.Next(24 * 29));
            return new QueryFilter(0, 1000, FromUnixNanos: AuditStore.UnixNanos(Timestamp.FromDateTimeOffset(from)),
                ToUnixNanos: AuditStore.UnixNanos(Timestamp.FromDateTimeOffset(from.AddHours(1))));
        }),
        ("path prefix (team)", () => new QueryFilter(0, 1000, PathPrefixHmac: key.Hmac($"kv/teams/t{random.Next(Generator.Teams)}"))),
        ("decision deny", () => new QueryFilter(0, 1000, Decision: Decision.Deny)),
        ("caller + deny", () => new QueryFilter(0, 1000, Caller: $"svc-{random.Next(Generator.Callers)}", Decision: Decision.Deny)),
        ("deny, page deep in", () => new QueryFilter(loadCount / 2, 1000, Decision: Decision.Deny)),
    ];
    Console.WriteLine("| query (page of up to 1000) | rows/page | p50 ms | p95 ms |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var (name, filter) in kinds)
    {
        store.Query(filter());
        var times = new List<double>();
        long rows = 0;
        for (var i = 0; i < queries; i++)
        {
            var query = filter();
            var sw = Stopwatch.StartNew();
            rows += store.Query(query).Count;
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"| {name} | {rows / queries} | {times[times.Count / 2]:F1} | {times[(int)(times.Count * 0.95)]:F1} |");
    }
}

return 0;

internal sealed class BenchEnvironment(string root) : IHostEnvironment
{
    public string EnvironmentName { get; set; } = "Benchmark";

    public string ApplicationName { get; set; } = "audit-store-benchmark";

    public string ContentRootPath { get; set; } = root;

    public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
}
