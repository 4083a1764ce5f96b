using SecretsBroker.Broker.Audit;

namespace SecretsBroker.Broker.Tests.Unit.Audit;

/// <summary>Event ids are UUIDv7: time-ordered (the audit stores' id index grows at its end), unique, random below the millisecond.</summary>
public sealed class AuditEventIdTests
{
    [Fact]
    public void Ids_are_version_7_with_the_event_time_in_their_first_48_bits()
    {
        var time = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_123);

        var id = Guid.Parse(AuditEventId.Next(time));

        Assert.Equal(7, id.Version);
        Assert.Equal(0b10, id.Variant >> 2); // RFC 9562 variant: the top bits of octet 8 are 10
        Assert.StartsWith(1_796_000_000_123L.ToString("x12", System.Globalization.CultureInfo.InvariantCulture), id.ToString("N"), StringComparison.Ordinal);
    }

    [Fact]
    public void Ids_sort_by_time_as_strings_and_never_repeat()
    {
        var start = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_000);
        var millisecond = Enumerable.Range(0, 1000).ToList();
        var ids = millisecond.Select(ms => Enumerable.Range(0, 3).Select(_ => AuditEventId.Next(start.AddMilliseconds(ms))).ToList()).ToList();

        Assert.Equal(3000, ids.SelectMany(group => group).Distinct(StringComparer.Ordinal).Count());
        for (var ms = 1; ms < ids.Count; ms++)
        {
            // Every id of a millisecond sorts after every id of the one before; within one, the random bits decide.
            Assert.True(string.CompareOrdinal(ids[ms - 1].Max(StringComparer.Ordinal), ids[ms].Min(StringComparer.Ordinal)) < 0);
        }
    }
}
