using System.Text.Json;
using Google.Protobuf;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Unit.Audit;

/// <summary>The Development audit sink: events read back as JSON lines, and the file bounded by its cap with the drop counted.</summary>
public sealed class LocalFileAuditStreamTests
{
    [Fact]
    public async Task Events_are_written_as_json_lines_that_read_back()
    {
        using var directory = new TestDirectory();
        using var sink = new SinkUnderTest(directory, maxBytes: 1 << 20);

        Assert.Equal(2, await sink.Stream.AppendAsync([Event("get", 1), Event("list", 2)], CancellationToken.None));

        var lines = File.ReadAllLines(sink.Stream.Path);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal("get", first.RootElement.GetProperty("action").GetString());
        Assert.Equal("event-1", first.RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Past_its_cap_the_file_rotates_once_and_the_oldest_events_are_dropped_and_counted()
    {
        using var directory = new TestDirectory();
        using var sink = new SinkUnderTest(directory, maxBytes: 4096);
        var written = 0;
        // Well over three caps' worth: the first file rotates to .1, then that .1 is replaced (its events dropped).
        while (written < 200)
        {
            Assert.Equal(1, await sink.Stream.AppendAsync([Event("get", ++written)], CancellationToken.None));
        }

        var current = File.ReadAllLines(sink.Stream.Path);
        var previous = File.ReadAllLines(sink.Stream.Path + ".1");
        Assert.True(new FileInfo(sink.Stream.Path).Length <= 4096);
        Assert.True(new FileInfo(sink.Stream.Path + ".1").Length <= 4096);
        Assert.Equal(2, Directory.GetFiles(Path.GetDirectoryName(sink.Stream.Path)!).Length);
        // What is kept is the newest events, in order; everything older was dropped and counted.
        var kept = previous.Concat(current).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).ToList();
        Assert.Equal(Enumerable.Range(written - kept.Count + 1, kept.Count).Select(i => $"event-{i}"), kept);
        Assert.Equal(written - kept.Count, sink.Dropped());
        Assert.True(sink.Dropped() > 0);
    }

    [Fact]
    public async Task A_restart_counts_the_events_already_in_the_files()
    {
        using var directory = new TestDirectory();
        var written = 0;
        using (var before = new SinkUnderTest(directory, maxBytes: 4096))
        {
            // Fill the current file almost to the cap, and one rotation's worth before it.
            while (!File.Exists(before.Stream.Path + ".1") || new FileInfo(before.Stream.Path).Length < 3000)
            {
                await before.Stream.AppendAsync([Event("get", ++written)], CancellationToken.None);
            }
        }
        var inPrevious = File.ReadAllLines(Path.Combine(directory.Path, "data", "audit.jsonl.1")).Length;

        using var after = new SinkUnderTest(directory, maxBytes: 4096);
        while (after.Dropped() == 0)
        {
            await after.Stream.AppendAsync([Event("get", ++written)], CancellationToken.None);
        }

        Assert.Equal(inPrevious, after.Dropped());
    }

    private static byte[] Event(string action, int n) =>
        new AuditEvent { Id = $"event-{n}", Action = action, Caller = "FAKE-caller", Decision = Decision.Allow }.ToByteArray();

    private sealed class SinkUnderTest : IDisposable
    {
        private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        private readonly MetricCollector<long> _events;

        public SinkUnderTest(TestDirectory directory, long maxBytes)
        {
            var meters = _services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
            _events = new MetricCollector<long>(meters, AuditMetrics.MeterName, "secretsbroker.audit.events");
            var options = new AuditOptions { Key = Convert.ToBase64String(new byte[32]), LocalFile = "data/audit.jsonl", LocalFileMaxBytes = maxBytes };
            Stream = new LocalFileAuditStream(Microsoft.Extensions.Options.Options.Create(options), new HostingEnvironment { ContentRootPath = directory.Path },
                new AuditMetrics(meters), NullLogger<LocalFileAuditStream>.Instance);
        }

        public LocalFileAuditStream Stream { get; }

        public long Dropped() => _events.GetMeasurementSnapshot().Where(m => Equals(m.Tags["outcome"], "dropped")).Sum(m => m.Value);

        public void Dispose()
        {
            Stream.Dispose();
            _events.Dispose();
            _services.Dispose();
        }
    }
}
