using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Tests.Store;

/// <summary>
/// What every audit store must do, run once per engine (<see cref="SqliteAuditStoreBehaviourTests"/>,
/// <see cref="PostgresAuditStoreBehaviourTests"/>): the chain, idempotency by event id, writers sharing the
/// store, Query's filters and paging, export order, retention with its anchor, and Verify catching tampering.
/// </summary>
public abstract class AuditStoreBehaviourTests : IAsyncLifetime
{
    protected IStoreBackend Backend { get; private set; } = null!;

    protected abstract Task<IStoreBackend> CreateBackendAsync();

    public async Task InitializeAsync() => Backend = await CreateBackendAsync();

    public async Task DisposeAsync() => await Backend.DisposeAsync();

    private static List<IncomingEvent> Incoming(IEnumerable<AuditEvent> events) => events.Select((e, i) => new IncomingEvent($"{i + 1}-0", e)).ToList();

    private static string Id(StoredRecord record) => AuditEvent.Parser.ParseFrom(record.Record).Id;

    [Fact]
    public async Task Appends_make_one_contiguous_chain_that_verifies()
    {
        using var store = Backend.Open();
        var events = Enumerable.Range(0, 25).Select(i => TestEvents.Make("alice", $"kv/a/{i}")).ToList();
        await store.AppendAsync(Incoming(events.Take(10)), [], default);
        await store.AppendAsync(Incoming(events.Skip(10)), [], default);

        var records = store.Query(new QueryFilter(0, 1000));
        Assert.Equal(Enumerable.Range(1, 25).Select(i => (long)i), records.Select(r => r.Sequence));
        Assert.Equal("", records[0].PreviousHash);
        Assert.All(records.Skip(1).Zip(records), pair => Assert.Equal(pair.Second.Hash, pair.First.PreviousHash));
        Assert.All(records, r => Assert.Equal(RecordChecks.ChainHash(r.PreviousHash, r.Record), r.Hash));
        Assert.Equal(events.Select(e => e.Id), records.Select(Id));
        var verify = store.Verify(default);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(25, verify.RecordsChecked);
    }

    [Fact]
    public async Task Large_pages_hold_exactly_the_matching_records_in_sequence_order()
    {
        // Pages of hundreds of rows are read in slices (ScatteredRows): no record lost, repeated or out of order.
        using var store = Backend.Open();
        var events = Enumerable.Range(0, 900).Select(i => TestEvents.Make(i % 3 == 0 ? "alice" : "bob", $"kv/teams/t{i % 5}/db",
            i % 7 == 0 ? Decision.Deny : Decision.Allow)).ToList();
        await store.AppendAsync(Incoming(events), [], default);

        Assert.Equal(Enumerable.Range(1, 900).Select(i => (long)i), store.Query(new QueryFilter(0, 1000)).Select(r => r.Sequence));
        Assert.Equal(Enumerable.Range(451, 400).Select(i => (long)i), store.Query(new QueryFilter(450, 400)).Select(r => r.Sequence));
        var alice = store.Query(new QueryFilter(0, 1000, Caller: "alice"));
        Assert.Equal(events.Where((_, i) => i % 3 == 0).Select(e => e.Id), alice.Select(Id));
        Assert.Equal(Enumerable.Range(0, 300).Select(i => 3L * i + 1), alice.Select(r => r.Sequence));
        var bobDenied = store.Query(new QueryFilter(0, 1000, Caller: "bob", Decision: Decision.Deny));
        Assert.Equal(events.Where((_, i) => i % 3 != 0 && i % 7 == 0).Select(e => e.Id), bobDenied.Select(Id));
        var team = store.Query(new QueryFilter(100, 150, PathPrefixHmac: TestEvents.Key.Hmac("kv/teams/t2")));
        Assert.Equal(events.Select((e, i) => (e, Sequence: i + 1L)).Where(x => x.Sequence > 100 && (x.Sequence - 1) % 5 == 2).Take(150).Select(x => x.e.Id),
            team.Select(Id));
    }

    [Fact]
    public async Task An_event_id_is_stored_once_within_a_batch_and_across_batches()
    {
        using var store = Backend.Open();
        var first = TestEvents.Make("alice", "kv/a/b");
        var result = await store.AppendAsync(Incoming([first, first.Clone(), TestEvents.Make("bob", "kv/a/c")]), [], default);
        Assert.Equal(2, result.Stored.Count);
        Assert.Equal(1, result.Duplicates);

        var again = await store.AppendAsync(Incoming([first.Clone(), TestEvents.Make("carol", "kv/a/d")]), [], default);
        Assert.Single(again.Stored);
        Assert.Equal(1, again.Duplicates);
        Assert.Equal(3, await Backend.CountAsync("SELECT COUNT(*) FROM audit_records"));
        Assert.True(store.Verify(default).Ok);
    }

    [Fact]
    public async Task Two_writers_sharing_the_store_keep_one_chain_and_store_each_event_once()
    {
        using var first = Backend.Open();
        using var second = Backend.Open();
        var events = Enumerable.Range(0, 300).Select(i => TestEvents.Make("alice", $"kv/a/{i}")).ToList();

        // Both writers get every event, in batches, at once, as two replicas would after a redelivery.
        await Task.WhenAll(
            Task.Run(async () =>
            {
                foreach (var batch in events.Chunk(20))
                {
                    await first.AppendAsync(Incoming(batch), [], default);
                }
            }),
            Task.Run(async () =>
            {
                foreach (var batch in events.AsEnumerable().Reverse().Chunk(15))
                {
                    await second.AppendAsync(Incoming(batch), [], default);
                }
            }));

        var verify = first.Verify(default);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(events.Count, verify.RecordsChecked);
        Assert.Equal(events.Select(e => e.Id).Order(), first.Query(new QueryFilter(0, 10_000)).Select(Id).Order());
    }

    [Fact]
    public async Task Query_filters_by_caller_decision_action_time_and_whole_path_segments_and_pages_by_sequence()
    {
        using var store = Backend.Open();
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var events = Enumerable.Range(0, 40).Select(i => TestEvents.Make(
            i % 2 == 0 ? "alice" : "bob",
            i % 4 == 0 ? $"kv/teams/alpha/{i}" : $"kv/teams/alphabet/{i}",
            i % 5 == 0 ? Decision.Deny : Decision.Allow,
            i % 3 == 0 ? "list" : "read",
            start.AddMinutes(i))).ToList();
        await store.AppendAsync(Incoming(events), [], default);

        List<string> Ids(QueryFilter filter) => [.. store.Query(filter).Select(Id)];
        List<string> Expected(Func<int, bool> keep) => [.. events.Where((_, i) => keep(i)).Select(e => e.Id)];

        Assert.Equal(Expected(i => i % 2 == 1), Ids(new QueryFilter(0, 100, Caller: "bob")));
        Assert.Equal(Expected(i => i % 5 == 0), Ids(new QueryFilter(0, 100, Decision: Decision.Deny)));
        Assert.Equal(Expected(i => i % 3 == 0), Ids(new QueryFilter(0, 100, Action: "list")));
        Assert.Equal(Expected(i => i is >= 10 and < 20),
            Ids(new QueryFilter(0, 100, FromUnixNanos: AuditStore.UnixNanos(events[10].Time), ToUnixNanos: AuditStore.UnixNanos(events[20].Time))));
        // "kv/teams/alpha" matches kv/teams/alpha/... only, not kv/teams/alphabet/...
        Assert.Equal(Expected(i => i % 4 == 0), Ids(new QueryFilter(0, 100, PathPrefixHmac: TestEvents.Key.Hmac("kv/teams/alpha"))));
        Assert.Equal(Expected(i => i % 4 == 0 && i % 5 == 0),
            Ids(new QueryFilter(0, 100, Decision: Decision.Deny, PathPrefixHmac: TestEvents.Key.Hmac("kv/teams/alpha"))));
        Assert.Equal(events.Count, Ids(new QueryFilter(0, 100, PathPrefixHmac: TestEvents.Key.Hmac("kv/teams"))).Count);

        // Paging: after_sequence and limit, with and without a prefix.
        var page = store.Query(new QueryFilter(0, 3, Caller: "alice"));
        Assert.Equal([1L, 3, 5], page.Select(r => r.Sequence));
        Assert.Equal([7L, 9], store.Query(new QueryFilter(5, 2, Caller: "alice")).Select(r => r.Sequence));
        Assert.Equal([9L, 13], store.Query(new QueryFilter(5, 2, PathPrefixHmac: TestEvents.Key.Hmac("kv/teams/alpha"))).Select(r => r.Sequence));
    }

    [Fact]
    public async Task A_time_window_pages_by_sequence_from_wherever_after_sequence_falls()
    {
        // SQLite's time-range query bounds sequence by max(after, the window's first sequence - 1): every position of
        // after against the window, open-ended windows and an empty window must page exactly like the filter says.
        using var store = Backend.Open();
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var events = Enumerable.Range(0, 30).Select(i => TestEvents.Make("alice", $"kv/a/{i}", time: start.AddMinutes(i))).ToList();
        await store.AppendAsync(Incoming(events), [], default);
        long Nanos(int minute) => AuditStore.UnixNanos(Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start.AddMinutes(minute)));
        List<long> Sequences(long after, int limit, int? from, int? to) =>
            [.. store.Query(new QueryFilter(after, limit, FromUnixNanos: from is { } f ? Nanos(f) : null, ToUnixNanos: to is { } t ? Nanos(t) : null)).Select(r => r.Sequence)];

        // Minutes 10..19 are sequences 11..20.
        Assert.Equal([11L, 12, 13], Sequences(0, 3, 10, 20));
        Assert.Equal([11L, 12, 13], Sequences(5, 3, 10, 20));
        Assert.Equal([16L, 17, 18], Sequences(15, 3, 10, 20));
        Assert.Equal([20L], Sequences(19, 3, 10, 20));
        Assert.Empty(Sequences(20, 3, 10, 20));
        Assert.Equal([29L, 30], Sequences(0, 5, 28, null));
        Assert.Equal([3L, 4], Sequences(2, 2, null, 5));
        Assert.Empty(Sequences(0, 5, 100, 200));
    }

    [Fact]
    public async Task ReadAll_returns_every_record_in_sequence_order_for_export()
    {
        using var store = Backend.Open();
        var events = Enumerable.Range(0, 30).Select(i => TestEvents.Make("alice", $"kv/a/{i}")).ToList();
        foreach (var batch in events.Chunk(7))
        {
            await store.AppendAsync(Incoming(batch), [], default);
        }
        var all = store.ReadAll().ToList();
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), all.Select(r => r.Sequence));
        Assert.Equal(events.Select(e => e.Id), all.Select(Id));
    }

    [Fact]
    public async Task Rejected_entries_are_recorded_once_per_stream_entry_and_content()
    {
        using var store = Backend.Open();
        var rejected = new RejectedEntry("5-0", "not an AuditEvent", 12, new string('a', 64));
        Assert.Equal(1, (await store.AppendAsync([], [rejected], default)).Rejected);
        Assert.Equal(0, (await store.AppendAsync([], [rejected], default)).Rejected);
        Assert.Equal(1, await Backend.CountAsync("SELECT COUNT(*) FROM audit_rejected_entries"));
    }

    [Fact]
    public async Task Retention_deletes_an_old_prefix_of_the_chain_anchors_it_and_the_chain_goes_on()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        using var store = Backend.Open(time);
        var now = time.GetUtcNow();
        var old = Enumerable.Range(0, 10).Select(i => TestEvents.Make("alice", $"kv/old/{i}", time: now.AddDays(-40).AddMinutes(i))).ToList();
        var recent = Enumerable.Range(0, 5).Select(i => TestEvents.Make("alice", $"kv/new/{i}", time: now.AddMinutes(-i))).ToList();
        // Old, but after recent records: stays until everything before it is old too.
        var lateOld = TestEvents.Make("bob", "kv/old/late", time: now.AddDays(-45));
        await store.AppendAsync(Incoming([.. old, .. recent, lateOld]), [], default);

        Assert.Equal(0, await store.DeleteOlderThanAsync(now.AddDays(-50), default));
        Assert.Null(store.ReadAnchor());

        Assert.Equal(10, await store.DeleteOlderThanAsync(now.AddDays(-30), default));
        Assert.Equal(10, store.ReadAnchor()!.Sequence);
        var remaining = store.Query(new QueryFilter(0, 100));
        Assert.Equal(recent.Select(e => e.Id).Append(lateOld.Id), remaining.Select(Id));
        Assert.Equal(remaining[0].PreviousHash, store.ReadAnchor()!.Hash);
        Assert.Equal(0, await Backend.CountAsync("SELECT COUNT(*) FROM audit_path_prefixes WHERE sequence <= 10"));
        var verify = store.Verify(default);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(6, verify.RecordsChecked);

        await store.AppendAsync(Incoming([TestEvents.Make("carol", "kv/new/next", time: now.AddMinutes(1))]), [], default);
        Assert.Equal(17, store.Query(new QueryFilter(16, 10)).Single().Sequence);
        Assert.True(store.Verify(default).Ok);

        // Everything old: the whole chain goes, the anchor holds the head, and the next append continues from it.
        Assert.Equal(7, await store.DeleteOlderThanAsync(now.AddDays(1), default));
        Assert.Equal(17, store.ReadAnchor()!.Sequence);
        await store.AppendAsync(Incoming([TestEvents.Make("dave", "kv/new/after", time: now.AddMinutes(2))]), [], default);
        var after = store.Query(new QueryFilter(0, 10)).Single();
        Assert.Equal(18, after.Sequence);
        Assert.Equal(store.ReadAnchor()!.Hash, after.PreviousHash);
        Assert.True(store.Verify(default).Ok);

        // Tampering with the first record after the anchor is still caught.
        await Backend.ExecuteAsync("UPDATE audit_records SET previous_hash = hash WHERE sequence = 18");
        var broken = store.Verify(default);
        Assert.Equal(18, broken.FirstBrokenSequence);
        Assert.Contains("anchor", broken.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UPDATE audit_records SET caller = 'mallory' WHERE sequence = 4", "column caller")]
    [InlineData("UPDATE audit_records SET decision = decision + 10 WHERE sequence = 4", "column decision")]
    [InlineData("DELETE FROM audit_records WHERE sequence = 4", "records 4 to 4 are missing")]
    [InlineData("UPDATE audit_records SET hash = previous_hash WHERE sequence = 4", "hash does not match")]
    [InlineData("DELETE FROM audit_path_prefixes WHERE sequence = 4", "path prefix index")]
    public async Task Verify_names_the_first_record_that_was_tampered_with(string tamper, string detail)
    {
        using var store = Backend.Open();
        await store.AppendAsync(Incoming(Enumerable.Range(0, 8).Select(i => TestEvents.Make("alice", $"kv/a/{i}"))), [], default);
        Assert.True(store.Verify(default).Ok);

        await Backend.ExecuteAsync(tamper);
        var verify = store.Verify(default);
        Assert.False(verify.Ok);
        Assert.Contains(detail, verify.Detail, StringComparison.Ordinal);
        Assert.Equal(detail.StartsWith("records", StringComparison.Ordinal) ? 5 : 4, verify.FirstBrokenSequence);
    }
}

public sealed class SqliteAuditStoreBehaviourTests : AuditStoreBehaviourTests
{
    protected override Task<IStoreBackend> CreateBackendAsync() => Task.FromResult<IStoreBackend>(new SqliteBackend());
}

[Trait("Category", "Integration")]
public sealed class PostgresAuditStoreBehaviourTests(PostgresServerFixture postgres) : AuditStoreBehaviourTests, IClassFixture<PostgresServerFixture>
{
    protected override async Task<IStoreBackend> CreateBackendAsync() => await PostgresBackend.CreateAsync(postgres.Server);
}
