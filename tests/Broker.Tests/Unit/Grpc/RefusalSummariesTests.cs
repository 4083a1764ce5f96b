using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Unit.Support;

namespace SecretsBroker.Broker.Tests.Unit.Grpc;

/// <summary>
/// Issue 17, item 5: repeated refusals from one source become counted events. Per source, caller, action, status and
/// reason and per interval, the first refusal is recorded as its own event, later ones are counted, and one summary
/// event with the count is recorded at the interval's end; memory and events are bounded however many sources there are.
/// </summary>
public sealed partial class RefusalSummariesTests : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly ObservableTimeProvider _time = new();
    private readonly List<(AccessContext Access, AuditEntry Entry, BrokerException Error)> _recorded = [];
    private RefusalSummaries _summaries;

    public RefusalSummariesTests()
    {
        _summaries = Create(maxTracked: 100);
    }

    [Fact]
    public async Task The_first_refusal_is_recorded_the_rest_are_counted_into_one_summary_at_the_end_of_the_interval()
    {
        await _summaries.StartAsync(CancellationToken.None);
        await _time.WaitForArmedAsync(due => due is not null);

        for (var i = 0; i < 1000; i++)
        {
            await _summaries.RefusedAsync(Garbage("ipv4:10.0.0.7:" + (40000 + i)), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);
        }
        var first = Assert.Single(Recorded());
        Assert.Equal("the bearer token is not valid", first.Error.Message);
        Assert.Equal("ipv4:10.0.0.7:40000", first.Access.SourceAddress);
        Assert.Equal(999, _summaries.FoldedSinceStart);

        _time.Advance(Interval);
        await Eventually.WaitUntilAsync(() => Recorded().Count == 2, because: "the summary at the end of the interval");

        var summary = Recorded()[1];
        Assert.Equal(999, CountOf(summary.Error.Message));
        Assert.StartsWith("the bearer token is not valid (repeated 999 more times from ", summary.Error.Message, StringComparison.Ordinal);
        Assert.Equal("ipv4:10.0.0.7", summary.Access.SourceAddress);
        Assert.Equal(BrokerErrorKind.Unauthenticated, summary.Error.Kind);
        Assert.Equal(AuditActions.Authenticate, summary.Entry.Action);
        Assert.Null(summary.Access.Caller);

        // A new interval: its first refusal is recorded on its own again.
        await _summaries.RefusedAsync(Garbage("ipv4:10.0.0.7:50000"), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);
        Assert.Equal(3, Recorded().Count);
    }

    [Fact]
    public async Task Sources_reasons_and_callers_are_counted_apart()
    {
        var caller = new CallerIdentity("test-alpha", "dev-token", new Dictionary<string, string>());
        foreach (var source in new[] { "ipv4:10.0.0.1:1", "ipv4:10.0.0.1:2", "ipv4:10.0.0.2:1" })
        {
            await _summaries.RefusedAsync(Garbage(source), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);
            await _summaries.RefusedAsync(Garbage(source), new AuditEntry(AuditActions.Authenticate),
                new BrokerException(BrokerErrorKind.Unauthenticated, "the token has expired"), default);
            await _summaries.RefusedAsync(Garbage(source) with { Caller = caller }, new AuditEntry(AuditActions.RateLimit),
                new BrokerException(BrokerErrorKind.ResourceExhausted, "rate limit exceeded for this caller"), default);
        }

        await _summaries.StopAsync(CancellationToken.None);

        // Two sources times three kinds of refusal recorded once each; the second port of 10.0.0.1 is the same source.
        var summaries = Recorded().Where(r => CountOf(r.Error.Message) > 0).ToList();
        Assert.Equal(6, Recorded().Count - summaries.Count);
        Assert.Equal(3, summaries.Count);
        Assert.All(summaries, s => Assert.Equal("ipv4:10.0.0.1", s.Access.SourceAddress));
        Assert.All(summaries, s => Assert.Equal(1, CountOf(s.Error.Message)));
        Assert.Equal("test-alpha", Assert.Single(summaries, s => s.Entry.Action == AuditActions.RateLimit).Access.Caller!.Subject);
    }

    [Fact]
    public async Task Beyond_MaxTracked_new_sources_are_counted_together_so_memory_and_events_stay_bounded()
    {
        _summaries.Dispose();
        _summaries = Create(maxTracked: 3);
        for (var source = 0; source < 100; source++)
        {
            for (var call = 0; call < 10; call++)
            {
                await _summaries.RefusedAsync(Garbage($"ipv4:10.1.0.{source}:{call}"), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);
            }
        }

        await _summaries.StopAsync(CancellationToken.None);

        // Three sources tracked (one event and one summary each), then one event and one summary for all the others.
        Assert.Equal(8, Recorded().Count);
        var others = Assert.Single(Recorded(), r => r.Access.SourceAddress == RefusalSummaries.OtherSources && CountOf(r.Error.Message) > 0);
        Assert.Equal(97 * 10 - 1, CountOf(others.Error.Message));
        Assert.Equal(1000, Recorded().Sum(r => 1 + CountOf(r.Error.Message)) - Recorded().Count(r => CountOf(r.Error.Message) > 0));
    }

    [Fact]
    public async Task Stopping_records_what_was_counted_so_far()
    {
        await _summaries.RefusedAsync(Garbage("ipv6:[fd00::1]:1"), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);
        await _summaries.RefusedAsync(Garbage("ipv6:[fd00::1]:2"), new AuditEntry(AuditActions.Authenticate), Unauthenticated(), default);

        await _summaries.StopAsync(CancellationToken.None);

        Assert.Equal(2, Recorded().Count);
        Assert.Equal("ipv6:[fd00::1]", Recorded()[1].Access.SourceAddress);
        Assert.Equal(1, CountOf(Recorded()[1].Error.Message));
    }

    public async ValueTask DisposeAsync()
    {
        await _summaries.StopAsync(CancellationToken.None);
        _summaries.Dispose();
    }

    private RefusalSummaries Create(int maxTracked) =>
        new(Record, Options.Create(new RefusalAuditOptions { Interval = Interval, MaxTracked = maxTracked }), _time, NullLogger<RefusalSummaries>.Instance);

    private static AccessContext Garbage(string source) => new(null, "0HTEST:1", source, "", "a-token-hmac", 0);

    private static BrokerException Unauthenticated() => new(BrokerErrorKind.Unauthenticated, "the bearer token is not valid");

    private static int CountOf(string reason) => Repeated().Match(reason) is { Success: true } match ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"\(repeated (\d+) more times from ")]
    private static partial Regex Repeated();

    private Task Record(AccessContext access, AuditEntry entry, BrokerException error, CancellationToken cancellationToken)
    {
        lock (_recorded)
        {
            _recorded.Add((access, entry, error));
        }
        return Task.CompletedTask;
    }

    private List<(AccessContext Access, AuditEntry Entry, BrokerException Error)> Recorded()
    {
        lock (_recorded)
        {
            return [.. _recorded];
        }
    }
}
