using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SecretsBroker.Broker;
using SecretsBroker.Client;
using SecretsBroker.V1;
using SecretsBroker.VaultEmulator;

namespace SecretsBroker.Benchmarks.Leases;

/// <summary>
/// <paramref name="count"/> leases on one KeepAlive stream against the Vault emulator (ttl 30 s), both in this
/// process: managed memory per attached lease, and how late renewals start after their due time (p50/p99) over two
/// renewal rounds. Lateness is read from the broker's exported histogram <c>secretsbroker.lease.renewal.lateness</c>
/// through a <see cref="MeterListener"/>, as any metrics pipeline sees it: the benchmark needs no hook in the broker.
/// </summary>
public static class LeaseBenchmark
{
    private const string LatenessInstrument = "secretsbroker.lease.renewal.lateness";
    private const string Token = "FAKE-lease-benchmark-token";
    private const string Seed = """{ "database": { "roles": { "bench": { "default_ttl": "30s", "max_ttl": "1h" } } } }""";

    public static async Task<string> RunAsync(int count, string? redis)
    {
        await using var vault = VaultEmulatorApp.Build(["--urls", "http://127.0.0.1:0", "--root-token", "FAKE-bench-root-token"], seed: JsonNode.Parse(Seed)!.AsObject());
        await vault.StartAsync();
        var directory = Directory.CreateTempSubdirectory("sb-lease-bench-");
        try
        {
            await using var broker = await StartBrokerAsync(Address(vault), redis, directory.FullName);
            return await MeasureAsync(broker, count, redis);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static async Task<string> MeasureAsync(WebApplication broker, int count, string? redis)
    {
        // Only this broker's meters (created by its IMeterFactory), only the lateness histogram.
        var meters = broker.Services.GetRequiredService<IMeterFactory>();
        var lateness = new ConcurrentQueue<double>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == LatenessInstrument && instrument.Meter.Scope == meters)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        // The histogram records seconds; the report is in milliseconds.
        listener.SetMeasurementEventCallback<double>((_, seconds, _, _) => lateness.Enqueue(seconds * 1000));
        listener.Start();

        var (client, channel) = BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = Address(broker),
            Token = Token,
            MaxAttempts = 1,
            DefaultTimeout = TimeSpan.FromMinutes(1),
        });
        using var ownedChannel = channel;
        var raw = client.Raw;

        var issueClock = Stopwatch.StartNew();
        var ids = new string[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            ids[i] = (await raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = "db/bench" }, cancellationToken: ct)).LeaseId);
        issueClock.Stop();

        using var cancel = new CancellationTokenSource();
        using var call = raw.KeepAlive(cancellationToken: cancel.Token);
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

        var before = ManagedHeap();
        var attachClock = Stopwatch.StartNew();
        foreach (var chunk in ids.Chunk(500))
        {
            await call.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { chunk } });
        }
        await WaitUntilAsync(() => Volatile.Read(ref attached) + Volatile.Read(ref errors) >= count, TimeSpan.FromMinutes(2), "every lease answered");
        if (Volatile.Read(ref attached) != count)
        {
            throw new InvalidOperationException($"{Volatile.Read(ref attached)} of {count} leases attached ({Volatile.Read(ref errors)} errors)");
        }
        attachClock.Stop();
        var after = ManagedHeap();
        var perLease = (after - before) / (double)count;

        var runClock = Stopwatch.StartNew();
        await WaitUntilAsync(() => Volatile.Read(ref renewed) >= 2 * count, TimeSpan.FromMinutes(3), "two renewal rounds");
        runClock.Stop();
        // Each renewal records its lateness before it calls Vault, so every renewal answered is in the histogram.
        var sorted = lateness.Order().ToArray();
        double Percentile(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

        await cancel.CancelAsync();
        await reader;
        return string.Create(CultureInfo.InvariantCulture, $"""
            leases: {count}, registry: {(redis is null ? "in-memory" : "redis")}, processors: {Environment.ProcessorCount}
            issue: {issueClock.Elapsed.TotalSeconds:0.0} s ({count / issueClock.Elapsed.TotalSeconds:0} /s, 32 concurrent)
            attach: {attachClock.Elapsed.TotalSeconds:0.00} s
            managed memory per attached lease: {perLease:0} bytes ({(after - before) / 1024.0 / 1024.0:0.0} MiB for {count})
            renewals: {sorted.Length} lateness samples from {LatenessInstrument} in {runClock.Elapsed.TotalSeconds:0.0} s, errors/other events: {Volatile.Read(ref errors)}
            renewal lateness ms: p50 {Percentile(0.50):0.0}, p90 {Percentile(0.90):0.0}, p99 {Percentile(0.99):0.0}, max {sorted[^1]:0.0}
            """);
    }

    /// <summary>The broker composed as Program.cs does, on 127.0.0.1:0, with the lease tests' Vault settings and renewal jitter on.</summary>
    private static async Task<WebApplication> StartBrokerAsync(Uri vault, string? redis, string contentRoot)
    {
        File.WriteAllText(Path.Combine(contentRoot, "policy.yaml"), """
            policies:
              - name: bench
                appliesTo: { subjects: [bench-user] }
                rules:
                  - paths: ["db/**"]
                    capabilities: [issue, renew, revoke]
            """);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ContentRootPath = contentRoot });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var settings = new Dictionary<string, string?>
        {
            ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
            ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "bench-user",
            ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Token))),
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Audit:Key"] = Convert.ToBase64String("FAKE-bench-audit-key-32-bytes!!!"u8),
            ["Broker:Audit:SpoolDirectory"] = "audit-spool",
            ["Broker:Audit:Strict"] = "false",
            ["Broker:RateLimits:Enabled"] = "false",
            ["Broker:Management:Urls"] = "http://127.0.0.1:0",
            ["Broker:Vault:Connections:default:Address"] = vault.ToString(),
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-bench-root-token",
            ["Broker:Mounts:0:Prefix"] = "db",
            ["Broker:Mounts:0:Type"] = "vault-dynamic",
            ["Broker:Mounts:0:Engine"] = "database",
            ["Broker:Leases:RenewJitter"] = "0.1",
            ["Broker:Leases:GracePeriod"] = "00:01:00",
        };
        if (redis is not null)
        {
            settings["Broker:Redis:Configuration"] = redis;
            settings["Broker:Cache:Encryption:NameKey"] = Convert.ToBase64String(SHA256.HashData("FAKE-bench-cache-names"u8));
            settings["Broker:Cache:Encryption:Keys:0:Id"] = "k1";
            settings["Broker:Cache:Encryption:Keys:0:Secret"] = Convert.ToBase64String(SHA256.HashData("FAKE-bench-cache-k1"u8));
            settings["Broker:Cache:Encryption:Keys:0:Active"] = "true";
        }
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddBroker();
        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        return app;
    }

    private static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{what}: not done within {timeout.TotalMinutes:0} min");
            }
            await Task.Delay(50);
        }
    }

    private static long ManagedHeap()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
