using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SecretsBroker.Broker;
using SecretsBroker.Broker.Watching;

namespace SecretsBroker.Benchmarks.Fleet;

/// <summary>
/// One broker replica, run as a child process of the benchmark (<c>node</c> mode): composed as Program.cs does, on
/// 127.0.0.1:0, with a vault-kv mount on the benchmark's Vault emulator, Redis for cache, backplane, watch state and
/// audit. It prints <c>ready URL</c>, then answers commands on stdin: <c>memory</c> (managed heap after a full GC and
/// VmRSS, in bytes) and <c>watches</c> (WatchSecrets calls it serves). The benchmark's client never shares its heap.
/// </summary>
public static class BrokerNode
{
    public const string Token = "FAKE-fleet-benchmark-token";

    public static async Task<int> RunAsync(Uri vault, string redis, TimeSpan pollInterval, int maxStreamsPerConnection)
    {
        var contentRoot = Directory.CreateTempSubdirectory("sb-fleet-node-");
        try
        {
            File.WriteAllText(Path.Combine(contentRoot.FullName, "policy.yaml"), """
                policies:
                  - name: bench
                    appliesTo: { subjects: [bench-user] }
                    rules:
                      - paths: ["vault/**"]
                        capabilities: [read, list, watch, write]
                """);
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ContentRootPath = contentRoot.FullName });
            builder.Logging.ClearProviders();
            // Warnings and errors to stderr (the benchmark keeps them in a log file); stdout carries the protocol.
            builder.Logging.AddSimpleConsole().AddFilter(level => level >= LogLevel.Warning);
            builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            // Bench setting only: a few HTTP/2 connections carry the 10,000 watches (Kestrel's default is 100 streams).
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.Http2.MaxStreamsPerConnection = maxStreamsPerConnection);
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
                ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "bench-user",
                ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Token))),
                ["Broker:Policy:File"] = "policy.yaml",
                ["Broker:Audit:Key"] = Convert.ToBase64String("FAKE-fleet-audit-key-32-bytes!!!"u8),
                ["Broker:Audit:SpoolDirectory"] = "audit-spool",
                ["Broker:RateLimits:Enabled"] = "false",
                ["Broker:Management:Urls"] = "http://127.0.0.1:0",
                ["Broker:Vault:Connections:default:Address"] = vault.ToString(),
                ["Broker:Vault:Connections:default:Auth:Method"] = "token",
                ["Broker:Vault:Connections:default:Auth:Token"] = VaultRootToken,
                ["Broker:Mounts:0:Prefix"] = "vault",
                ["Broker:Mounts:0:Type"] = "vault-kv",
                ["Broker:Mounts:0:EnginePath"] = "secret",
                ["Broker:Mounts:0:Cache:Enabled"] = "true",
                ["Broker:Mounts:0:Cache:Ttl"] = "00:10:00",
                ["Broker:Watch:PollInterval"] = pollInterval.ToString("c", CultureInfo.InvariantCulture),
                ["Broker:Watch:MaxTargetsPerWatch"] = "100",
                ["Broker:Redis:Configuration"] = redis,
                // The same fake keys on every replica: they share the sealed L2 entries.
                ["Broker:Cache:Encryption:NameKey"] = Convert.ToBase64String(SHA256.HashData("FAKE-fleet-cache-names"u8)),
                ["Broker:Cache:Encryption:Keys:0:Id"] = "k1",
                ["Broker:Cache:Encryption:Keys:0:Secret"] = Convert.ToBase64String(SHA256.HashData("FAKE-fleet-cache-k1"u8)),
                ["Broker:Cache:Encryption:Keys:0:Active"] = "true",
            });
            builder.AddBroker();
            await using var app = builder.Build();
            app.MapBroker();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
                .First(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal));
            Console.WriteLine("ready " + address);
            var watcher = app.Services.GetRequiredService<SecretWatcher>();
            while (await Console.In.ReadLineAsync() is { } command && command != "exit")
            {
                Console.WriteLine(command switch
                {
                    "memory" => string.Create(CultureInfo.InvariantCulture, $"memory {ManagedHeap()} {RssBytes()}"),
                    "watches" => string.Create(CultureInfo.InvariantCulture, $"watches {watcher.SubscriptionCount}"),
                    _ => "unknown " + command,
                });
            }
            await app.StopAsync();
            return 0;
        }
        finally
        {
            contentRoot.Delete(recursive: true);
        }
    }

    public const string VaultRootToken = "FAKE-fleet-root-token";

    private static long ManagedHeap()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>VmRSS of this process (/proc/self/status, kB).</summary>
    private static long RssBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }
}
