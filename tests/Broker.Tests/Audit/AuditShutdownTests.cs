using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting.Internal;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Redis;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Audit;

/// <summary>The real Redis stream writer (<see cref="RedisAuditStream"/> over <see cref="RedisConnection"/>) when the broker stops.</summary>
[Trait("Category", "Integration")]
public sealed class AuditShutdownTests
{
    [Fact]
    public async Task Stopping_while_the_first_Redis_connect_hangs_spools_and_counts_the_batch()
    {
        // A "Redis" that accepts the TCP connection and never answers: the client's handshake hangs (ConnectTimeout).
        using var blackhole = new TcpListener(IPAddress.Loopback, 0);
        blackhole.Start();
        var connecting = blackhole.AcceptSocketAsync();
        using var directory = new TestDirectory();
        var spoolDirectory = Path.Combine(directory.Path, "spool");
        await using var services = new ServiceCollection()
            .AddMetrics()
            .AddLogging()
            .AddSingleton<IHostEnvironment>(new HostingEnvironment { ContentRootPath = directory.Path })
            .AddSingleton(TimeProvider.System)
            .Configure<RedisOptions>(o => o.Configuration = $"127.0.0.1:{((IPEndPoint)blackhole.LocalEndpoint).Port}")
            .Configure<AuditOptions>(o =>
            {
                o.Key = Convert.ToBase64String("FAKE-shutdown-audit-key-32bytes!"u8);
                o.SpoolDirectory = spoolDirectory;
                // The stream timeout must not be what ends the append: only the stop does.
                o.StreamTimeout = TimeSpan.FromMinutes(1);
            })
            .AddSingleton<RedisConnection>()
            .AddSingleton<AuditMetrics>()
            .AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuditOptions>>().Value.CreateEventMacKey())
            .AddSingleton<IAuditStream, RedisAuditStream>()
            .AddSingleton<AuditRecorder>()
            .BuildServiceProvider();
        using var events = new MetricCollector<long>(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), AuditMetrics.MeterName,
            "secretsbroker.audit.events");
        var recorder = services.GetRequiredService<AuditRecorder>();
        await recorder.StartAsync(CancellationToken.None);

        // Strict mode: the task completes once the event is in the stream or the spool.
        var recording = recorder.RecordAsync(Encoding.UTF8.GetBytes("FAKE-event-during-connect"), CancellationToken.None);
        using var held = await connecting.WaitAsync(TimeSpan.FromSeconds(30));
        await recorder.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        await recording.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, events.GetMeasurementSnapshot().Where(m => Equals(m.Tags["outcome"], "spooled")).Sum(m => m.Value));
        recorder.Dispose();
        using var spool = new AuditSpool(spoolDirectory);
        var (spooled, _) = spool.ReadPending(10);
        Assert.Equal(["FAKE-event-during-connect"], spooled.Select(e => Encoding.UTF8.GetString(e)));
    }
}
