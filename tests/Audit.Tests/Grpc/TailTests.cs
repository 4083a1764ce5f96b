using Grpc.Core;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Tests.Grpc;

/// <summary>AuditLog.Tail against the service process and a real redis-server.</summary>
[Trait("Category", "Integration")]
public sealed class TailTests : RedisAndStoreTest
{
    // An hour: a caught-up Tail can only see new events through the ingestion's notification, not by polling.
    private static readonly string[] NoPolling = ["--Audit:Tail:PollInterval=01:00:00", "--Audit:Tail:PageSize=4"];

    [Fact]
    public async Task Tail_streams_stored_events_then_new_ones_as_they_are_stored_and_resumes_from_a_sequence()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, extraArguments: NoPolling);
        var database = await Redis.DatabaseAsync();
        var first = Enumerable.Range(0, 10).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        await TestEvents.AppendAsync(database, first);
        await service.WaitUntilStoredAsync(first.Count);

        using (var cancel = new CancellationTokenSource())
        using (var tail = service.Client.Tail(new TailRequest(), AuditServiceProcess.OperatorHeaders, cancellationToken: cancel.Token))
        {
            // What was stored before the call, over several pages (PageSize 4), oldest first, paths opened.
            var received = await ReadAsync(tail, first.Count);
            Assert.Equal(first.Select(e => e.Id), received.Select(s => s.Event.Id));
            Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), received.Select(s => s.Sequence));
            Assert.Equal(TestEvents.Key.OpenPath(first[3]), received[3].Event.Path);

            // Then each new event as it is stored, on the same call.
            var second = Enumerable.Range(0, 3).Select(i => TestEvents.Make("bob", $"kv/teams/beta/db-{i}", Decision.Deny)).ToList();
            await TestEvents.AppendAsync(database, second);
            received = await ReadAsync(tail, second.Count);
            Assert.Equal(second.Select(e => e.Id).Order(), received.Select(s => s.Event.Id).Order());
            Assert.Equal([11L, 12L, 13L], received.Select(s => s.Sequence));
            Assert.Equal(received[0].PreviousHash, (await service.QueryAllAsync(new QueryRequest { AfterSequence = 9, Limit = 1 }))[0].Hash);
            await cancel.CancelAsync();
        }

        // Resumed after the last sequence a forwarder wrote: nothing twice, nothing skipped.
        using var resumed = service.Client.Tail(new TailRequest { AfterSequence = 12 }, AuditServiceProcess.OperatorHeaders);
        Assert.Equal([13L], (await ReadAsync(resumed, 1)).Select(s => s.Sequence));
        var third = TestEvents.Make("carol", "kv/teams/gamma/db");
        await TestEvents.AppendAsync(database, [third]);
        var last = Assert.Single(await ReadAsync(resumed, 1));
        Assert.Equal((14L, third.Id), (last.Sequence, last.Event.Id));
    }

    [Fact]
    public async Task Tail_needs_an_operator_token_and_a_non_negative_sequence()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);

        using var anonymous = service.Client.Tail(new TailRequest());
        var refused = await Assert.ThrowsAsync<RpcException>(() => anonymous.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);

        using var wrong = service.Client.Tail(new TailRequest(), new Metadata { { "authorization", "Bearer FAKE-not-an-operator" } });
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => wrong.ResponseStream.MoveNext())).StatusCode);

        using var negative = service.Client.Tail(new TailRequest { AfterSequence = -1 }, AuditServiceProcess.OperatorHeaders);
        var invalid = await Assert.ThrowsAsync<RpcException>(() => negative.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("after_sequence", invalid.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>Reads exactly <paramref name="count"/> events (bounded by a generous deadline, in case they never come).</summary>
    private static async Task<List<StoredEvent>> ReadAsync(AsyncServerStreamingCall<StoredEvent> call, int count)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = new List<StoredEvent>();
        while (events.Count < count && await call.ResponseStream.MoveNext(deadline.Token))
        {
            events.Add(call.ResponseStream.Current);
        }
        Assert.Equal(count, events.Count);
        return events;
    }
}
