using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Grpc;

/// <summary>
/// AuditLog over one store of 60 known events (one per minute from T0): 3 callers, 3 actions, 3 decisions,
/// paths under two teams. One service process for the whole class.
/// </summary>
[Trait("Category", "Integration")]
public sealed class QueryTests(QueryTests.StoreFixture store) : IClassFixture<QueryTests.StoreFixture>
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    private AuditServiceProcess Service => store.Service;

    private IReadOnlyList<AuditEvent> Events => store.Events;

    [Fact]
    public async Task Without_filters_every_event_comes_back_oldest_first_with_its_path_opened()
    {
        var all = await Service.QueryAllAsync();
        Assert.Equal(Events.Count, all.Count);
        Assert.Equal(Events.Select(e => e.Id), all.Select(s => s.Event.Id));
        Assert.Equal(Events.Select(e => TestEvents.Key.OpenPath(e)), all.Select(s => s.Event.Path));
        Assert.Equal("", all[0].PreviousHash);
        for (var i = 1; i < all.Count; i++)
        {
            Assert.Equal(all[i - 1].Hash, all[i].PreviousHash);
        }
    }

    [Fact]
    public async Task Caller_action_and_decision_filters_return_exactly_the_matching_events()
    {
        var bob = await Service.QueryAllAsync(new QueryRequest { Caller = "bob" });
        Assert.Equal(Events.Where(e => e.Caller == "bob").Select(e => e.Id), bob.Select(s => s.Event.Id));

        var lists = await Service.QueryAllAsync(new QueryRequest { Action = "list" });
        Assert.Equal(Events.Where(e => e.Action == "list").Select(e => e.Id), lists.Select(s => s.Event.Id));

        var denied = await Service.QueryAllAsync(new QueryRequest { Decision = Decision.Deny });
        Assert.Equal(Events.Where(e => e.Decision == Decision.Deny).Select(e => e.Id), denied.Select(s => s.Event.Id));

        var combined = await Service.QueryAllAsync(new QueryRequest { Caller = "carol", Action = "read", Decision = Decision.Error });
        Assert.Equal(Events.Where(e => e.Caller == "carol" && e.Action == "read" && e.Decision == Decision.Error).Select(e => e.Id),
            combined.Select(s => s.Event.Id));
        Assert.NotEmpty(combined);

        Assert.Empty(await Service.QueryAllAsync(new QueryRequest { Caller = "nobody" }));
    }

    [Fact]
    public async Task A_path_prefix_matches_whole_segments_through_the_prefix_index()
    {
        var alpha = await Service.QueryAllAsync(new QueryRequest { PathPrefix = "kv/teams/alpha" });
        Assert.Equal(Events.Where(e => TestEvents.Key.OpenPath(e)!.StartsWith("kv/teams/alpha/", StringComparison.Ordinal)).Select(e => e.Id),
            alpha.Select(s => s.Event.Id));
        Assert.All(alpha, s => Assert.StartsWith("kv/teams/alpha/", s.Event.Path));
        Assert.Equal(30, alpha.Count);

        Assert.Equal(alpha.Select(s => s.Sequence), (await Service.QueryAllAsync(new QueryRequest { PathPrefix = "kv/teams/alpha/" })).Select(s => s.Sequence));
        Assert.Equal(Events.Count, (await Service.QueryAllAsync(new QueryRequest { PathPrefix = "kv" })).Count);
        Assert.Single(await Service.QueryAllAsync(new QueryRequest { PathPrefix = "kv/teams/beta/db-7" }));
        Assert.Empty(await Service.QueryAllAsync(new QueryRequest { PathPrefix = "kv/teams/alp" }));
        Assert.Empty(await Service.QueryAllAsync(new QueryRequest { PathPrefix = "aws" }));
    }

    [Fact]
    public async Task A_time_range_includes_from_and_excludes_to()
    {
        var range = await Service.QueryAllAsync(new QueryRequest
        {
            From = Timestamp.FromDateTimeOffset(T0.AddMinutes(10)),
            To = Timestamp.FromDateTimeOffset(T0.AddMinutes(20)),
        });
        Assert.Equal(Events.Skip(10).Take(10).Select(e => e.Id), range.Select(s => s.Event.Id));

        var since = await Service.QueryAllAsync(new QueryRequest { From = Timestamp.FromDateTimeOffset(T0.AddMinutes(55)), Caller = "alice" });
        Assert.Equal(Events.Skip(55).Where(e => e.Caller == "alice").Select(e => e.Id), since.Select(s => s.Event.Id));
    }

    [Fact]
    public async Task Paging_with_limit_and_after_sequence_returns_every_event_once_in_order()
    {
        var pages = new List<List<StoredEvent>>();
        long after = 0;
        while (true)
        {
            var page = await ReadAsync(new QueryRequest { Limit = 7, AfterSequence = after });
            if (page.Count == 0)
            {
                break;
            }
            pages.Add(page);
            after = page[^1].Sequence;
        }
        Assert.Equal(9, pages.Count);
        Assert.All(pages.SkipLast(1), page => Assert.Equal(7, page.Count));
        Assert.Equal(Events.Select(e => e.Id), pages.SelectMany(p => p).Select(s => s.Event.Id));

        var deniedPage = await ReadAsync(new QueryRequest { Decision = Decision.Deny, Limit = 3, AfterSequence = 30 });
        Assert.Equal(Events.Select((e, i) => (e, Sequence: i + 1L)).Where(x => x.Sequence > 30 && x.e.Decision == Decision.Deny).Take(3).Select(x => x.e.Id),
            deniedPage.Select(s => s.Event.Id));
    }

    [Fact]
    public async Task ComputeHmac_gives_the_value_to_search_token_hmacs_by()
    {
        var response = await Service.Client.ComputeHmacAsync(new ComputeHmacRequest { Value = "alice-token" }, AuditServiceProcess.OperatorHeaders);
        Assert.Equal(TestEvents.Key.Hmac("alice-token"), response.Hmac);
        var all = await Service.QueryAllAsync(new QueryRequest { Caller = "alice" });
        Assert.All(all, s => Assert.Equal(response.Hmac, s.Event.TokenHmac));

        var empty = await Assert.ThrowsAsync<RpcException>(() => Service.Client.ComputeHmacAsync(new ComputeHmacRequest(), AuditServiceProcess.OperatorHeaders).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
    }

    [Theory]
    [InlineData(-1, 0, "limit")]
    [InlineData(10_001, 0, "limit")]
    [InlineData(10, -5, "after_sequence")]
    public async Task Bad_query_arguments_are_INVALID_ARGUMENT_with_a_message(int limit, long after, string mentioned)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new QueryRequest { Limit = limit, AfterSequence = after }));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(mentioned, error.Status.Detail);
    }

    [Fact]
    public async Task A_time_range_that_ends_before_it_starts_is_INVALID_ARGUMENT()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new QueryRequest
        {
            From = Timestamp.FromDateTimeOffset(T0.AddMinutes(20)),
            To = Timestamp.FromDateTimeOffset(T0.AddMinutes(10)),
        }));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token")]
    [InlineData("Basic dGVzdA==")]
    public async Task Calls_without_a_valid_operator_token_are_UNAUTHENTICATED(string? authorization)
    {
        var headers = authorization is null ? new Metadata() : new Metadata { { "authorization", authorization } };
        var query = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Service.Client.Query(new QueryRequest(), headers);
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.Unauthenticated, query.StatusCode);
        var verify = await Assert.ThrowsAsync<RpcException>(() => Service.Client.VerifyAsync(new VerifyRequest(), headers).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, verify.StatusCode);
        var hmac = await Assert.ThrowsAsync<RpcException>(() => Service.Client.ComputeHmacAsync(new ComputeHmacRequest { Value = "x" }, headers).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, hmac.StatusCode);
    }

    private async Task<List<StoredEvent>> ReadAsync(QueryRequest request)
    {
        using var call = Service.Client.Query(request, AuditServiceProcess.OperatorHeaders);
        var page = new List<StoredEvent>();
        await foreach (var stored in call.ResponseStream.ReadAllAsync())
        {
            page.Add(stored);
        }
        return page;
    }

    public sealed class StoreFixture : IAsyncLifetime
    {
        private readonly TestDirectory _directory = new();
        private RedisServer _redis = null!;

        public AuditServiceProcess Service { get; private set; } = null!;

        public List<AuditEvent> Events { get; } = [];

        public async Task InitializeAsync()
        {
            string[] callers = ["alice", "bob", "carol"];
            string[] actions = ["read", "list", "issue"];
            Decision[] decisions = [Decision.Allow, Decision.Deny, Decision.Error];
            for (var i = 0; i < 60; i++)
            {
                var caller = callers[i % 3];
                Events.Add(TestEvents.Make(caller, $"kv/teams/{(i % 2 == 0 ? "alpha" : "beta")}/db-{i / 2}", decisions[i / 3 % 3], actions[i / 9 % 3],
                    T0.AddMinutes(i), token: $"{caller}-token"));
            }
            _redis = await RedisServer.StartAsync();
            Service = await AuditServiceProcess.StartAsync(_redis, Path.Combine(_directory.Path, "audit.db"));
            // One at a time, so the store's order is the list's order.
            foreach (var auditEvent in Events)
            {
                await TestEvents.AppendAsync(await _redis.DatabaseAsync(), [auditEvent]);
            }
            await Service.WaitUntilStoredAsync(Events.Count);
        }

        public async Task DisposeAsync()
        {
            await Service.DisposeAsync();
            await _redis.DisposeAsync();
            _directory.Dispose();
        }
    }
}
