using System.Text;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Unit.Support;

namespace SecretsBroker.Broker.Tests.Unit.Audit;

/// <summary>
/// The audit recorder with a stream that fails and recovers, and its real spool in a temporary folder: what strict mode
/// waits for, and that every event reaches the stream once, in order, whatever the stream did meanwhile.
/// </summary>
public sealed class AuditRecorderTests
{
    [Fact]
    public async Task In_strict_mode_a_record_completes_only_once_the_stream_accepted_it()
    {
        var stream = new FakeAuditStream();
        await using var audit = await RecorderUnderTest.StartAsync(stream);
        var hold = stream.HoldAppends();

        var recording = audit.Recorder.RecordAsync(Event(1), CancellationToken.None);
        await hold.Started;

        Assert.False(recording.IsCompleted);
        hold.Release();
        await recording.OrTimeout();
        Assert.Equal(["event-1"], stream.Received);
        Assert.Equal(0, audit.Recorder.SpoolDepth);
        await audit.WaitForMeasurementsAsync(1);
        Assert.Equal(1, audit.Count("recorded"));
    }

    [Fact]
    public async Task Outside_strict_mode_a_record_does_not_wait_for_the_stream()
    {
        var stream = new FakeAuditStream();
        await using var audit = await RecorderUnderTest.StartAsync(stream, strict: false);
        var hold = stream.HoldAppends();

        var recording = audit.Recorder.RecordAsync(Event(1), CancellationToken.None);

        Assert.True(recording.IsCompletedSuccessfully);
        await hold.Started;
        hold.Release();
        await stream.WaitForReceivedAsync(1);
    }

    [Fact]
    public async Task Events_recorded_while_the_stream_is_down_are_spooled_first_then_replayed_in_order_before_newer_ones()
    {
        var stream = new FakeAuditStream { Down = true };
        await using var audit = await RecorderUnderTest.StartAsync(stream);

        for (var i = 1; i <= 3; i++)
        {
            await audit.Recorder.RecordAsync(Event(i), CancellationToken.None).OrTimeout();
            // Strict: completed means durable in the spool.
            Assert.Equal(i, audit.Recorder.SpoolDepth);
        }
        Assert.Empty(stream.Received);

        stream.Down = false;
        await audit.Recorder.RecordAsync(Event(4), CancellationToken.None).OrTimeout();

        Assert.Equal(["event-1", "event-2", "event-3", "event-4"], stream.Received);
        Assert.Equal(0, audit.Recorder.SpoolDepth);
        await audit.WaitForMeasurementsAsync(5);
        Assert.Equal(3, audit.Count("spooled"));
        Assert.Equal(3, audit.Count("replayed"));
        Assert.Equal(1, audit.Count("recorded"));
        Assert.Equal(0, audit.Count("failed"));
    }

    [Fact]
    public async Task With_no_new_events_the_spool_is_replayed_after_the_replay_interval()
    {
        var time = new ObservableTimeProvider();
        var stream = new FakeAuditStream { Down = true };
        await using var audit = await RecorderUnderTest.StartAsync(stream, time: time);
        var interval = audit.Options.ReplayInterval;

        await audit.Recorder.RecordAsync(Event(1), CancellationToken.None).OrTimeout();
        // With events spooled, the writer also waits for the replay interval (nothing armed a timer before).
        await time.WaitForArmedAsync(time.GetUtcNow() + interval);
        stream.Down = false;
        time.Advance(interval);

        await stream.WaitForReceivedAsync(1);
        await audit.WaitForMeasurementsAsync(2);
        Assert.Equal(["event-1"], stream.Received);
        Assert.Equal(1, audit.Count("replayed"));
        Assert.Equal(0, audit.Recorder.SpoolDepth);
    }

    [Fact]
    public async Task A_group_cut_short_by_the_stream_spools_only_the_events_the_stream_did_not_take()
    {
        var stream = new FakeAuditStream();
        await using var audit = await RecorderUnderTest.StartAsync(stream);
        stream.AcceptOnlyNext(2);

        await audit.Recorder.RecordManyAsync([Event(1), Event(2), Event(3), Event(4), Event(5)], CancellationToken.None).OrTimeout();

        Assert.Equal(["event-1", "event-2"], stream.Received);
        Assert.Equal(3, audit.Recorder.SpoolDepth);

        await audit.Recorder.RecordAsync(Event(6), CancellationToken.None).OrTimeout();

        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"event-{i}"), stream.Received);
        await audit.WaitForMeasurementsAsync(4);
        Assert.Equal(3, audit.Count("recorded"));
        Assert.Equal(3, audit.Count("spooled"));
        Assert.Equal(3, audit.Count("replayed"));
    }

    [Fact]
    public async Task A_replay_cut_short_offers_the_rest_again_so_nothing_is_lost()
    {
        var stream = new FakeAuditStream { Down = true };
        await using var audit = await RecorderUnderTest.StartAsync(stream);
        for (var i = 1; i <= 3; i++)
        {
            await audit.Recorder.RecordAsync(Event(i), CancellationToken.None).OrTimeout();
        }

        stream.Down = false;
        stream.AcceptOnlyNext(1); // the replay: only event-1 makes it
        await audit.Recorder.RecordAsync(Event(4), CancellationToken.None).OrTimeout();
        // The replay stopped part-way, so the new event went behind the spooled ones.
        Assert.Equal(4, audit.Recorder.SpoolDepth);
        await audit.Recorder.RecordAsync(Event(5), CancellationToken.None).OrTimeout();

        // At least once: event-1 is offered again (the audit service stores each event id once), nothing is missing,
        // and the order of first arrival is the order of recording.
        Assert.Equal(["event-1", "event-1", "event-2", "event-3", "event-4", "event-5"], stream.Received);
        Assert.Equal(0, audit.Recorder.SpoolDepth);
    }

    public static TheoryData<string> Outages() => new("DDDUUU", "UDUDUD", "DUUDDU", "UUDDDDDDUU", "DDDDDDDDDD");

    [Theory]
    [MemberData(nameof(Outages))]
    public async Task Whatever_the_stream_does_every_event_arrives_once_and_in_order(string upOrDownPerEvent)
    {
        var stream = new FakeAuditStream();
        await using var audit = await RecorderUnderTest.StartAsync(stream);

        for (var i = 0; i < upOrDownPerEvent.Length; i++)
        {
            stream.Down = upOrDownPerEvent[i] == 'D';
            await audit.Recorder.RecordAsync(Event(i + 1), CancellationToken.None).OrTimeout();
        }
        stream.Down = false;
        await audit.Recorder.RecordAsync(Event(upOrDownPerEvent.Length + 1), CancellationToken.None).OrTimeout();

        Assert.Equal(Enumerable.Range(1, upOrDownPerEvent.Length + 1).Select(i => $"event-{i}"), stream.Received);
        Assert.Equal(0, audit.Recorder.SpoolDepth);
    }

    [Fact]
    public async Task Spooled_events_outlive_a_restart_and_are_replayed_by_the_next_recorder()
    {
        using var directory = new TestDirectory();
        var stream = new FakeAuditStream { Down = true };
        await using (var first = await RecorderUnderTest.StartAsync(stream, spoolDirectory: directory.Path))
        {
            await first.Recorder.RecordAsync(Event(1), CancellationToken.None).OrTimeout();
            await first.Recorder.RecordAsync(Event(2), CancellationToken.None).OrTimeout();
        }

        stream.Down = false;
        await using var second = await RecorderUnderTest.StartAsync(stream, spoolDirectory: directory.Path);
        Assert.Equal(2, second.Recorder.SpoolDepth);
        await second.Recorder.RecordAsync(Event(3), CancellationToken.None).OrTimeout();

        Assert.Equal(["event-1", "event-2", "event-3"], stream.Received);
    }

    [Fact]
    public async Task In_strict_mode_an_event_neither_the_stream_nor_the_spool_took_fails_UNAVAILABLE_and_is_counted()
    {
        using var directory = new TestDirectory();
        // A file where the spool folder should be: the spool cannot open.
        var notAFolder = directory.WriteFile("spool", "not a folder");
        var stream = new FakeAuditStream { Down = true };
        await using var audit = await RecorderUnderTest.StartAsync(stream, spoolDirectory: notAFolder);
        Assert.False(audit.Recorder.SpoolUsable);

        var error = await Assert.ThrowsAsync<BrokerException>(() => audit.Recorder.RecordAsync(Event(1), CancellationToken.None).OrTimeout());

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Equal(1, audit.Count("failed"));
    }

    [Fact]
    public async Task Outside_strict_mode_an_event_that_could_not_be_recorded_is_counted_as_failed()
    {
        using var directory = new TestDirectory();
        var notAFolder = directory.WriteFile("spool", "not a folder");
        var stream = new FakeAuditStream { Down = true };
        await using var audit = await RecorderUnderTest.StartAsync(stream, strict: false, spoolDirectory: notAFolder);

        var recording = audit.Recorder.RecordAsync(Event(1), CancellationToken.None);

        Assert.True(recording.IsCompletedSuccessfully);
        await audit.WaitForMeasurementsAsync(1);
        Assert.Equal(1, audit.Count("failed"));
    }

    private static byte[] Event(int n) => Encoding.UTF8.GetBytes($"event-{n}");

    /// <summary>An <see cref="AuditRecorder"/> as the host runs it (started, stopped), with its metrics collected.</summary>
    private sealed class RecorderUnderTest : IAsyncDisposable
    {
        private readonly ServiceProvider _services;
        private readonly TestDirectory? _ownDirectory;
        private readonly MetricCollector<long> _events;

        private RecorderUnderTest(IAuditStream stream, bool strict, TimeProvider time, string? spoolDirectory)
        {
            _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
            var meters = _services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
            _events = new MetricCollector<long>(meters, AuditMetrics.MeterName, "secretsbroker.audit.events");
            if (spoolDirectory is null)
            {
                _ownDirectory = new TestDirectory();
                spoolDirectory = Path.Combine(_ownDirectory.Path, "spool");
            }
            // StreamTimeout is wall-clock time (CancelAfter): at its maximum, a held append never times out under a slow test.
            Options = new AuditOptions
            {
                Strict = strict,
                Key = Convert.ToBase64String(new byte[32]),
                SpoolDirectory = spoolDirectory,
                StreamTimeout = TimeSpan.FromMinutes(1),
            };
            // SpoolDirectory is absolute here, so the content root does not matter (Path.Combine keeps an absolute path).
            var environment = new HostingEnvironment { ContentRootPath = Path.GetTempPath() };
            Recorder = new AuditRecorder(stream, Microsoft.Extensions.Options.Options.Create(Options), environment, new AuditMetrics(meters), time,
                NullLogger<AuditRecorder>.Instance);
        }

        public AuditOptions Options { get; }

        public AuditRecorder Recorder { get; }

        public static async Task<RecorderUnderTest> StartAsync(IAuditStream stream, bool strict = true, TimeProvider? time = null, string? spoolDirectory = null)
        {
            var recorder = new RecorderUnderTest(stream, strict, time ?? new ObservableTimeProvider(), spoolDirectory);
            await recorder.Recorder.StartAsync(CancellationToken.None);
            return recorder;
        }

        /// <summary>Events counted with this outcome (recorded, spooled, replayed, failed).</summary>
        public long Count(string outcome) =>
            _events.GetMeasurementSnapshot().Where(m => Equals(m.Tags["outcome"], outcome)).Sum(m => m.Value);

        /// <summary>Waits until the recorder has reported at least <paramref name="count"/> counter increments.</summary>
        public async Task WaitForMeasurementsAsync(int count)
        {
            // Every outcome is exported at zero from start (AuditMetrics): those measurements are not increments.
            for (var all = _events.GetMeasurementSnapshot(); all.Count(m => m.Value > 0) < count; all = _events.GetMeasurementSnapshot())
            {
                await _events.WaitForMeasurementsAsync(all.Count + 1, TaskGuards.Limit);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Recorder.StopAsync(CancellationToken.None).OrTimeout();
            Recorder.Dispose();
            _events.Dispose();
            await _services.DisposeAsync();
            _ownDirectory?.Dispose();
        }
    }
}
