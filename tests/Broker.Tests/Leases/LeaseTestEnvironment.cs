using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;
using V1Client = SecretsBroker.V1.SecretsBroker.SecretsBrokerClient;

namespace SecretsBroker.Broker.Tests.Leases;

/// <summary>
/// Seed and broker settings for the lease tests: database roles with short TTLs on the Vault emulator
/// (<c>short</c>: ttl 4 s, max ttl 12 s; <c>steady</c>: ttl 4 s, max ttl 1 h), a KV mount with the cache on,
/// renewal without jitter so the timeline is predictable, and fast polling for watches. Leases are renewed at
/// a third of their TTL (the default is two thirds), so a renewal that starts late on a loaded machine still
/// has two thirds of the TTL (2.6 s) before the lease would expire in Vault.
/// </summary>
public static class LeaseTestEnvironment
{
    public const string Seed = """
        {
          "kv": { "secret": { "app/db": [ { "password": "FAKE-watch-v1" }, { "password": "FAKE-watch-v2" } ] } },
          "database": { "roles": {
            "short": { "default_ttl": "4s", "max_ttl": "12s" },
            "steady": { "default_ttl": "4s", "max_ttl": "1h" } } }
        }
        """;

    public static Dictionary<string, string?> Broker(VaultEmulatorHost vault, RedisServer? redis = null, string grace = "00:00:01")
    {
        var settings = redis is null ? CacheTestSettings.InProcessOnly() : CacheTestSettings.WithRedis(redis);
        foreach (var (key, value) in VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = VaultEmulatorHost.RootToken,
        }))
        {
            settings[key] = value;
        }
        settings["Broker:Mounts:0:Cache:Enabled"] = "true";
        settings["Broker:Mounts:0:Cache:Ttl"] = "00:10:00";
        settings["Broker:Leases:RenewJitter"] = "0";
        settings["Broker:Leases:RenewAtFraction"] = "0.34";
        settings["Broker:Leases:RotationOverlap"] = "00:00:00.500";
        settings["Broker:Leases:GracePeriod"] = grace;
        settings["Broker:Leases:SweepInterval"] = "00:00:00.100";
        settings["Broker:Leases:RetryDelay"] = "00:00:00.200";
        settings["Broker:Watch:PollInterval"] = "00:00:00.200";
        return settings;
    }

    /// <summary>The emulator's view of one lease: (live, revoked), or null when it does not know it.</summary>
    public static (bool Live, bool Revoked)? LeaseState(VaultEmulatorHost vault, string leaseId)
    {
        foreach (var lease in vault.State.DescribeLeases())
        {
            if (lease!["lease_id"]!.GetValue<string>() == leaseId)
            {
                return (lease["live"]!.GetValue<bool>(), lease["revoked"]!.GetValue<bool>());
            }
        }
        return null;
    }

    /// <summary>Writes a new KV version through the emulator's HTTP API, as another Vault client would.</summary>
    public static async Task<int> WriteKvAsync(VaultEmulatorHost vault, string name, string password)
    {
        using var http = new HttpClient { BaseAddress = vault.Address };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/secret/data/{name}")
        {
            Content = JsonContent.Create(new JsonObject { ["data"] = new JsonObject { ["password"] = password } }),
        };
        request.Headers.Add("X-Vault-Token", VaultEmulatorHost.RootToken);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return body["data"]!["version"]!.GetValue<int>();
    }
}

/// <summary>A KeepAlive stream whose events are collected in the background.</summary>
public sealed class KeepAliveStream : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<KeepAliveRequest, LeaseEvent> _call;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Task _reader;

    private KeepAliveStream(V1Client client)
    {
        _call = client.KeepAlive(cancellationToken: _cancel.Token);
        _reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var leaseEvent in _call.ResponseStream.ReadAllAsync(_cancel.Token))
                {
                    Events.Enqueue((DateTimeOffset.UtcNow, leaseEvent));
                }
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException)
            {
                // Cancelled by the test.
            }
        });
    }

    public ConcurrentQueue<(DateTimeOffset Received, LeaseEvent Event)> Events { get; } = new();

    public IEnumerable<LeaseEvent> OfType(LeaseEventType type) => Events.Select(e => e.Event).Where(e => e.Type == type);

    /// <summary>The events so far as "+ms TYPE(old|new|other) expiry", for assertion messages (no lease ids).</summary>
    public string Describe(string firstLeaseId)
    {
        var start = Events.IsEmpty ? DateTimeOffset.UtcNow : Events.First().Received;
        return string.Join("; ", Events.Select(e => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"+{(e.Received - start).TotalMilliseconds:0}ms {e.Event.Type}({(e.Event.LeaseId == firstLeaseId ? "first" : "other")}) exp {e.Event.ExpiresAt?.ToDateTimeOffset() - start}")));
    }

    public static async Task<KeepAliveStream> OpenAsync(V1Client client, params string[] attach)
    {
        var stream = new KeepAliveStream(client);
        await stream._call.ResponseHeadersAsync;
        await stream._call.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { attach } });
        return stream;
    }

    /// <summary>Ends the stream as a crashed or disconnected client would: no detach, just gone.</summary>
    public async ValueTask DisposeAsync()
    {
        await _cancel.CancelAsync();
        await _reader;
        _call.Dispose();
        _cancel.Dispose();
    }
}
