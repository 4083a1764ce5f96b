using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;
using Xunit.Abstractions;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>
/// Issue 20's speed target: Encrypt of a 1 KB value through the broker with the local keyring, p50 within 2x of a cached
/// GetSecret in the same run. Real Kestrel on loopback, one HTTP/2 channel, calls one at a time, the two kinds interleaved
/// in rounds so both see the same machine load. A measurement, not a check: it runs when BENCH_CRYPTO=1 (docs/benchmarks.md,
/// "Encryption") and writes its figures to the test output and to tests/Benchmarks/artifacts/crypto-latency.md.
/// </summary>
[Trait("Category", "Benchmark")]
public sealed class CryptoLatencyBenchmark(ITestOutputHelper output)
{
    private const int Rounds = 20;
    private const int CallsPerRound = 250;

    [SkippableFact]
    public async Task Encrypt_1KB_with_the_local_keyring_against_a_cached_GetSecret()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("BENCH_CRYPTO") == "1", "a benchmark: set BENCH_CRYPTO=1 to run it");
        var directory = new TestDirectory();
        directory.WriteFile("keys.yaml", LocalKeyringFixture.KeyFile(1, LocalKeyringFixture.KeyV1));
        directory.WriteFile("team.yaml", "secrets:\n  bench/value:\n    data: { value: FAKE-bench-value }\n");
        directory.WriteFile("policy.yaml", "policies:\n  - name: all\n    appliesTo: { subjects: [test-alpha] }\n    rules:\n      - paths: [\"**\"]\n        capabilities: [read, encrypt]\n");
        await using var host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "keys",
            ["Broker:Mounts:0:Type"] = "local-keyring",
            ["Broker:Mounts:0:KeyFile"] = "keys.yaml",
            ["Broker:Mounts:1:Prefix"] = "team",
            ["Broker:Mounts:1:Type"] = "local",
            ["Broker:Mounts:1:File"] = "team.yaml",
            ["Broker:Policy:File"] = "policy.yaml",
            ["Logging:LogLevel:Default"] = "Warning",
            // As load.py does: the per-caller and per-source budgets would otherwise refuse a benchmark's call rate.
            ["Broker:RateLimits:TokenLimit"] = "1000000",
            ["Broker:RateLimits:TokensPerPeriod"] = "1000000",
            ["Broker:RateLimits:Source:Enabled"] = "false",
        }, directory);
        using var channel = GrpcChannel.ForAddress(host.Address);
        var headers = new Metadata { { "authorization", $"Bearer {BrokerHost.TestToken}" } };
        var crypto = new V1.Crypto.CryptoClient(channel);
        var reader = new V1.SecretsBroker.SecretsBrokerClient(channel);
        var encrypt = new EncryptRequest { KeyPath = "keys/app", Plaintext = ByteString.CopyFrom(new byte[1024]) };
        encrypt.Context.Add("model", "FAKE-bench");
        var get = new GetSecretRequest { Path = "team/bench/value" };

        // Warm up: JIT, connection, the read cache.
        for (var i = 0; i < 500; i++)
        {
            await crypto.EncryptAsync(encrypt, headers);
            await reader.GetSecretAsync(get, headers);
        }
        var encryptTimes = new List<double>();
        var getTimes = new List<double>();
        for (var round = 0; round < Rounds; round++)
        {
            await MeasureAsync(async () => await crypto.EncryptAsync(encrypt, headers), encryptTimes);
            await MeasureAsync(async () => await reader.GetSecretAsync(get, headers), getTimes);
        }
        var (encryptP50, getP50) = (Percentile(encryptTimes, 0.5), Percentile(getTimes, 0.5));
        var report = $"""
            | call | calls | p50 µs | p90 µs | p99 µs |
            |---|---:|---:|---:|---:|
            | Encrypt 1 KB, local-keyring | {encryptTimes.Count} | {encryptP50:F0} | {Percentile(encryptTimes, 0.9):F0} | {Percentile(encryptTimes, 0.99):F0} |
            | GetSecret, cached (L1) | {getTimes.Count} | {getP50:F0} | {Percentile(getTimes, 0.9):F0} | {Percentile(getTimes, 0.99):F0} |

            p50 ratio Encrypt / GetSecret: {encryptP50 / getP50:F2} (target: at most 2). Load average at the end: {File.ReadAllText("/proc/loadavg").Trim()}.
            """;
        output.WriteLine(report);
        var artifacts = Path.Combine(RepositoryLayout.Root, "tests", "Benchmarks", "artifacts");
        Directory.CreateDirectory(artifacts);
        await File.WriteAllTextAsync(Path.Combine(artifacts, "crypto-latency.md"), report + "\n");
    }

    private static async Task MeasureAsync(Func<Task> call, List<double> into)
    {
        for (var i = 0; i < CallsPerRound; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await call();
            into.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
    }
}
