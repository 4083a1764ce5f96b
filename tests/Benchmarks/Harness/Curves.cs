using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Benchmarks.Harness;

/// <summary>
/// The cost-curve client (tests/Benchmarks/curves.py): h2load sends one body and one token, so reads spread
/// uniformly over many secrets or many callers need a client that picks both per call.
/// </summary>
internal static class Curves
{
    /// <summary>Reads every MOUNT/sNNN path once through BatchGetSecrets (100 per call), so each is in L1 before a run.</summary>
    public static async Task<int> WarmAsync(Uri address, string token, string mount, int count)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new V1.SecretsBroker.SecretsBrokerClient(channel);
        var headers = new Metadata { { "authorization", "Bearer " + token } };
        var failed = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, (count + 99) / 100), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (chunk, ct) =>
        {
            var request = new BatchGetSecretsRequest();
            request.Paths.Add(Enumerable.Range(chunk * 100, Math.Min(100, count - (chunk * 100))).Select(i => Path(mount, i)));
            var response = await client.BatchGetSecretsAsync(request, headers, DateTime.UtcNow.AddSeconds(60), ct);
            Interlocked.Add(ref failed, response.Results.Count(r => r.ResultCase != BatchGetSecretsResult.ResultOneofCase.Secret));
        });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warmed {count} secrets, {failed} failed"));
        return failed == 0 ? 0 : 1;
    }

    /// <summary>One GetSecret of MOUNT/s000 per token of TOKENS, so every caller's JWT is validated (and cached) before a run.</summary>
    public static async Task<int> WarmCallersAsync(Uri address, string tokensFile, string mount)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new V1.SecretsBroker.SecretsBrokerClient(channel);
        var request = new GetSecretRequest { Path = Path(mount, 0) };
        var tokens = File.ReadAllLines(tokensFile).Where(l => l.Length > 0).ToArray();
        await Parallel.ForEachAsync(tokens, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (token, ct) =>
            await client.GetSecretAsync(request, new Metadata { { "authorization", "Bearer " + token } }, DateTime.UtcNow.AddSeconds(60), ct));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warmed {tokens.Length} callers"));
        return 0;
    }

    /// <summary>The path format of <see cref="Commands.WriteRequests"/> and the benchmark's secrets file.</summary>
    public static string Path(string mount, int i) => string.Create(CultureInfo.InvariantCulture, $"{mount}/s{i:000}");

    /// <summary>
    /// GetSecret for SECONDS over CONNECTIONS channels with CONCURRENCY calls in flight on each; every call picks a path
    /// (MOUNT/s000 .. COUNT) and a token (one per line of TOKENS) uniformly at random. Prints
    /// 'ok failed seconds' and, on stderr, the failures by status.
    /// </summary>
    public static async Task<int> LoadAsync(Uri address, int seconds, int connections, int concurrency, string mount, int count, string tokensFile)
    {
        var paths = Enumerable.Range(0, count).Select(i => Path(mount, i)).ToArray();
        var headers = File.ReadAllLines(tokensFile).Where(l => l.Length > 0).Select(t => new Metadata { { "authorization", "Bearer " + t } }).ToArray();
        var requests = paths.Select(p => new GetSecretRequest { Path = p }).ToArray();
        var channels = Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(address)).ToArray();
        var failures = new ConcurrentDictionary<StatusCode, int>();
        long ok = 0;
        var stopwatch = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(seconds);
        var workers = channels.SelectMany(channel => Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            var client = new V1.SecretsBroker.SecretsBrokerClient(channel);
            while (stopwatch.Elapsed < until)
            {
                var request = requests[Random.Shared.Next(requests.Length)];
                try
                {
                    var response = await client.GetSecretAsync(request, headers[Random.Shared.Next(headers.Length)]);
                    if (response.Secret.Serving.Source == ValueSource.L1)
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        failures.AddOrUpdate((StatusCode)(-1), 1, (_, n) => n + 1); // served, but not from L1
                    }
                }
                catch (RpcException ex)
                {
                    failures.AddOrUpdate(ex.StatusCode, 1, (_, n) => n + 1);
                }
            }
        }))).ToArray();
        await Task.WhenAll(workers);
        var elapsed = stopwatch.Elapsed.TotalSeconds;
        foreach (var channel in channels)
        {
            channel.Dispose();
        }
        foreach (var (status, n) in failures)
        {
            Console.Error.WriteLine($"{((int)status < 0 ? "not-from-L1" : status.ToString())} {n}");
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ok} {failures.Values.Sum()} {elapsed:F3}"));
        return 0;
    }
}
