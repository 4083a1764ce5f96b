using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using SecretsBroker.Client;
using SecretsBroker.VaultEmulator;

namespace SecretsBroker.Benchmarks.Fleet;

/// <summary>What both scenarios share: the Vault emulator in this process, clients, timing and percentiles.</summary>
public static class Bench
{
    public static async Task<WebApplication> StartVaultAsync(JsonObject kv)
    {
        var vault = VaultEmulatorApp.Build(["--urls", "http://127.0.0.1:0", "--root-token", BrokerNode.VaultRootToken],
            seed: new JsonObject { ["kv"] = new JsonObject { ["secret"] = kv } });
        await vault.StartAsync();
        return vault;
    }

    public static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single());

    /// <summary>One client with its own channel (its own HTTP/2 connection pool).</summary>
    public static (BrokerClient Client, GrpcChannel Channel) Client(Uri broker) =>
        BrokerClientServiceCollectionExtensions.CreateClient(new BrokerClientOptions
        {
            Address = broker,
            Token = BrokerNode.Token,
            MaxAttempts = 1,
            DefaultTimeout = TimeSpan.FromMinutes(1),
        });

    /// <summary>A new KV version written by another Vault client (the emulator's HTTP API, as Vault's KV v2 "create/update secret").</summary>
    public static async Task<string> WriteKvAsync(Uri vault, string name, string password)
    {
        using var http = new HttpClient { BaseAddress = vault };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/secret/data/{name}")
        {
            Content = JsonContent.Create(new JsonObject { ["data"] = new JsonObject { ["password"] = password } }),
        };
        request.Headers.Add("X-Vault-Token", BrokerNode.VaultRootToken);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        return body!["data"]!["version"]!.GetValue<int>().ToString(CultureInfo.InvariantCulture);
    }

    public static double Ms(long fromTimestamp, long toTimestamp) => Stopwatch.GetElapsedTime(fromTimestamp, toTimestamp).TotalMilliseconds;

    /// <summary>Nearest-rank percentile of an ascending array.</summary>
    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static string Summary(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0
            ? "no samples"
            : string.Create(CultureInfo.InvariantCulture,
                $"p50 {Percentile(sorted, 0.5):0.0} ms, p90 {Percentile(sorted, 0.9):0.0} ms, p99 {Percentile(sorted, 0.99):0.0} ms, max {sorted[^1]:0.0} ms ({sorted.Length} samples)");
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < timeout)
        {
            await Task.Delay(5);
        }
    }
}
