using System.Globalization;
using SecretsBroker.Benchmarks.Fleet;

// dotnet run -c Release -- watchers [--count 10000] [--connections 4] [--writes 10] [--backend-changes 3] [--cached 2000] [--redis HOST:PORT] [--out FILE]
// dotnet run -c Release -- replicas [--iterations 500] [--readers 2] [--redis HOST:PORT] [--out FILE]
// (node --vault URL --redis HOST:PORT --poll TIME --max-streams N: one broker replica; the scenarios start these themselves)
var mode = args.FirstOrDefault();
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 1; i + 1 < args.Length; i += 2)
{
    options[args[i]] = args[i + 1];
}
int Int(string name, int fallback) => int.Parse(options.GetValueOrDefault(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
if (mode == "node")
{
    return await BrokerNode.RunAsync(new Uri(options["--vault"]), options["--redis"], TimeSpan.Parse(options["--poll"], CultureInfo.InvariantCulture), Int("--max-streams", 100));
}
if (mode is not ("watchers" or "replicas") || args.Length % 2 == 0)
{
    Console.Error.WriteLine("usage: watchers [--count N] [--connections N] [--writes N] [--backend-changes N] [--cached N] | replicas [--iterations N] [--readers N]; both: [--redis HOST:PORT] [--out FILE]");
    return 2;
}
var logs = Directory.CreateTempSubdirectory("sb-fleet-");
Console.WriteLine($"broker logs: {logs.FullName}");
var report = mode == "watchers"
    ? await new WatchBenchmark(Int("--count", 10_000), Int("--connections", 4), Int("--writes", 10), Int("--backend-changes", 3), Int("--cached", 2000))
        .RunAsync(options.GetValueOrDefault("--redis"), logs.FullName)
    : await new ReplicaBenchmark(Int("--iterations", 500), Int("--readers", 2)).RunAsync(options.GetValueOrDefault("--redis"), logs.FullName);
if (options.TryGetValue("--out", out var file))
{
    // run.sh's artifacts folder is not in the repository: a first run makes it.
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
    await File.WriteAllTextAsync(file, report);
}
return 0;
