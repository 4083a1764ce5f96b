using System.Text;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Audit;

public sealed class AuditSpoolTests
{
    private static byte[] Event(int n) => Encoding.UTF8.GetBytes($"event-{n}");

    [Fact]
    public void Spooled_events_are_read_back_in_order_and_survive_a_reopen()
    {
        using var directory = new TestDirectory();
        using (var spool = new AuditSpool(directory.Path))
        {
            spool.Append([Event(1), Event(2)]);
            spool.Append([Event(3)]);
            Assert.Equal(3, spool.PendingRecords);
        }
        using var reopened = new AuditSpool(directory.Path);

        var (events, _) = reopened.ReadPending(10);

        Assert.Equal(3, reopened.PendingRecords);
        Assert.Equal(["event-1", "event-2", "event-3"], events.Select(e => Encoding.UTF8.GetString(e)));
    }

    [Fact]
    public void Replay_progress_is_durable_so_nothing_is_offered_twice_after_a_restart()
    {
        using var directory = new TestDirectory();
        using (var spool = new AuditSpool(directory.Path))
        {
            spool.Append([Event(1), Event(2), Event(3)]);
            var (events, end) = spool.ReadPending(2);
            spool.MarkReplayed(end, events.Count);
        }
        using var reopened = new AuditSpool(directory.Path);

        var (rest, restEnd) = reopened.ReadPending(10);
        Assert.Equal(["event-3"], rest.Select(e => Encoding.UTF8.GetString(e)));

        reopened.MarkReplayed(restEnd, rest.Count);
        Assert.False(reopened.HasPending);
        Assert.Equal(0, new FileInfo(Path.Combine(directory.Path, "audit.spool")).Length);
    }

    [Fact]
    public void A_record_torn_by_a_crash_ends_the_log_and_is_cut_away_by_the_next_append()
    {
        using var directory = new TestDirectory();
        using (var spool = new AuditSpool(directory.Path))
        {
            spool.Append([Event(1), Event(2)]);
        }
        var file = Path.Combine(directory.Path, "audit.spool");
        // A crash in the middle of the second record's bytes.
        using (var stream = new FileStream(file, FileMode.Open))
        {
            stream.SetLength(stream.Length - 3);
        }
        using var reopened = new AuditSpool(directory.Path);
        Assert.Equal(1, reopened.PendingRecords);

        reopened.Append([Event(3)]);
        var (events, _) = reopened.ReadPending(10);

        Assert.Equal(["event-1", "event-3"], events.Select(e => Encoding.UTF8.GetString(e)));
    }

    [Fact]
    public void A_record_whose_checksum_does_not_match_is_not_offered()
    {
        using var directory = new TestDirectory();
        using (var spool = new AuditSpool(directory.Path))
        {
            spool.Append([Event(1), Event(2)]);
        }
        var file = Path.Combine(directory.Path, "audit.spool");
        var bytes = File.ReadAllBytes(file);
        bytes[^6] ^= 0xFF; // inside the second record's payload
        File.WriteAllBytes(file, bytes);

        using var reopened = new AuditSpool(directory.Path);
        var (events, _) = reopened.ReadPending(10);

        Assert.Equal(["event-1"], events.Select(e => Encoding.UTF8.GetString(e)));
    }
}
