using System.Globalization;
using SecretsBroker.Benchmarks.Leases;

// dotnet run -c Release -- [--count N] [--redis HOST:PORT] [--out FILE]
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    options[args[i]] = args[i + 1];
}
if (args.Length % 2 != 0 || options.Keys.Any(k => k is not ("--count" or "--redis" or "--out")))
{
    Console.Error.WriteLine("usage: [--count N (default 10000)] [--redis HOST:PORT (lease registry in Redis)] [--out FILE (report copy)]");
    return 2;
}
var count = int.Parse(options.GetValueOrDefault("--count", "10000"), CultureInfo.InvariantCulture);
var report = await LeaseBenchmark.RunAsync(count, options.GetValueOrDefault("--redis"));
Console.WriteLine(report);
if (options.TryGetValue("--out", out var file))
{
    await File.WriteAllTextAsync(file, report + Environment.NewLine);
}
return 0;
