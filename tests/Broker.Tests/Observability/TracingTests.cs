using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>Trace ids: taken from the caller's traceparent, available to the read path (for audit events), exported over OTLP when configured.</summary>
[Trait("Category", "Integration")]
public sealed class TracingTests
{
    private const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

    [Fact]
    public async Task The_callers_trace_id_is_the_current_trace_id_while_the_backend_is_read_even_with_export_off()
    {
        var backend = new TraceCapturingBackend();
        await using var host = await BrokerHost.StartAsync(Mount(), configureServices: backend.Register);
        var client = host.CreateClient();

        await client.Raw.GetSecretAsync(new GetSecretRequest { Path = "traced/a" },
            new Metadata { { "traceparent", $"00-{TraceId}-00f067aa0ba902b7-01" } });
        Assert.Equal(TraceId, Assert.Single(backend.TraceIds));

        // Without a traceparent the broker starts a trace of its own: every call has a trace id.
        await client.Raw.GetSecretAsync(new GetSecretRequest { Path = "traced/b" });
        Assert.Equal(2, backend.TraceIds.Count);
        Assert.Matches("^[0-9a-f]{32}$", backend.TraceIds.Last());
        Assert.NotEqual(TraceId, backend.TraceIds.Last());
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Audit_events_carry_the_callers_trace_id()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = CacheTestSettings.WithRedis(redis);
        foreach (var (key, value) in Mount())
        {
            settings[key] = value;
        }
        var backend = new TraceCapturingBackend();
        await using var host = await BrokerHost.StartAsync(settings, configureServices: backend.Register);

        await host.CreateClient().Raw.GetSecretAsync(new GetSecretRequest { Path = "traced/a" },
            new Metadata { { "traceparent", $"00-{TraceId}-00f067aa0ba902b7-01" } });

        var events = await AuditStreamReader.ReadAllAsync(redis);
        Assert.Equal(TraceId, Assert.Single(events).Event.TraceId);
    }

    [Fact]
    public async Task With_an_otlp_endpoint_spans_of_the_callers_trace_are_exported()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var backend = new TraceCapturingBackend();
        var settings = Mount();
        settings["Broker:Tracing:OtlpEndpoint"] = new Uri(collector.Address, "/v1/traces").ToString();
        settings["Broker:Tracing:OtlpProtocol"] = "http/protobuf";
        settings["Broker:Tracing:ExportDelay"] = "00:00:00.100";
        await using var host = await BrokerHost.StartAsync(settings, configureServices: backend.Register);

        await host.CreateClient().Raw.GetSecretAsync(new GetSecretRequest { Path = "traced/a" },
            new Metadata { { "traceparent", $"00-{TraceId}-00f067aa0ba902b7-01" } });

        var traceIdBytes = Convert.FromHexString(TraceId);
        var spanName = "backend get"u8.ToArray();
        await Eventually.WaitUntilAsync(() => collector.Bodies.Any(b => b.AsSpan().IndexOf(traceIdBytes) >= 0 && b.AsSpan().IndexOf(spanName) >= 0),
            TimeSpan.FromSeconds(30), $"an OTLP export with the caller's trace id and the backend span; received {collector.Bodies.Count} exports: "
                + string.Join(", ", collector.Bodies.Select(b => Convert.ToHexString(b.AsSpan(0, Math.Min(b.Length, 400))))));
        // Spans carry the mount, never the path or the secret's name.
        Assert.All(collector.Bodies, b => Assert.True(b.AsSpan().IndexOf("traced/a"u8) < 0, "an exported span holds the logical path"));
    }

    private static Dictionary<string, string?> Mount() => new()
    {
        ["Broker:Mounts:0:Prefix"] = "traced",
        ["Broker:Mounts:0:Type"] = "traced",
        ["Broker:Mounts:0:Cache:Enabled"] = "false",
    };

    /// <summary>A backend that records <see cref="BrokerTelemetry.CurrentTraceId"/> at each read, as the audit recorder would see it.</summary>
    private sealed class TraceCapturingBackend : ISecretReading, ISecretListing, ISecretBackendFactory
    {
        public ConcurrentQueue<string?> TraceIds { get; } = new();

        public string MountType => "traced";

        public void Register(WebApplicationBuilder builder) => builder.Services.AddSingleton<ISecretBackendFactory>(this);

        public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings) => this;

        public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
        {
            TraceIds.Enqueue(BrokerTelemetry.CurrentTraceId);
            return Task.FromResult(new SecretValue
            {
                Version = "1",
                Data = new Dictionary<string, string> { ["v"] = "FAKE-traced-value" },
                CreatedAt = DateTimeOffset.UnixEpoch,
            });
        }

        public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
            Task.FromResult(new SecretListingPage([], null));
    }

    /// <summary>An OTLP/HTTP trace receiver on a loopback port that keeps every request body.</summary>
    private sealed class OtlpCollector : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private OtlpCollector(WebApplication app, Uri address)
        {
            _app = app;
            Address = address;
        }

        public Uri Address { get; }

        public ConcurrentQueue<byte[]> Bodies { get; } = new();

        public static async Task<OtlpCollector> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            // HTTP/1.1, as the OTLP exporter speaks it (the broker's appsettings.json in the test output says HTTP/2 only).
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(endpoint =>
                endpoint.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1));
            builder.Logging.ClearProviders();
            var app = builder.Build();
            OtlpCollector? collector = null;
            app.MapPost("/v1/traces", async context =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                collector!.Bodies.Enqueue(body.ToArray());
                context.Response.ContentType = "application/x-protobuf";
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
            collector = new OtlpCollector(app, new Uri(address));
            return collector;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
