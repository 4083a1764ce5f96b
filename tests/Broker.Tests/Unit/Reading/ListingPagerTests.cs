using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Reading;

namespace SecretsBroker.Broker.Tests.Unit.Reading;

/// <summary>
/// <see cref="ListingPager"/> over a backend with opaque cursors (like AWS NextToken): entries are filtered before a page
/// is cut, a page can end inside a backend chunk and the next one resumes there, and one call's work is bounded.
/// </summary>
public sealed class ListingPagerTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(250)]
    public async Task Pages_are_full_of_visible_entries_until_the_last_which_has_no_cursor(int pageSize)
    {
        var backend = new OpaqueCursorBackend(Enumerable.Range(0, 1000).Select(i => $"n{i:D4}"));
        // One name in seven is visible, so most chunks end on hidden names.
        var visible = backend.Names.Where((_, i) => i % 7 == 3).Select(n => "m/" + n).ToList();

        var pages = new List<List<string>>();
        ListingCursor? cursor = ListingPager.First(pageSize);
        while (cursor is { } start)
        {
            var (entries, next) = await ListingPager.ReadAsync(backend, "", "m/", visible.Contains, pageSize, start, maxCalls: 10, CancellationToken.None);
            pages.Add([.. entries.Select(e => e.Name)]);
            cursor = next;
        }

        Assert.Equal(visible, pages.SelectMany(p => p));
        Assert.All(pages.SkipLast(1), page => Assert.Equal(pageSize, page.Count));
        Assert.InRange(pages[^1].Count, 1, pageSize);
    }

    [Fact]
    public async Task A_call_reads_at_most_max_calls_chunks_and_then_hands_back_where_it_stopped()
    {
        var backend = new OpaqueCursorBackend(Enumerable.Range(0, 5000).Select(i => $"n{i:D4}"));
        HashSet<string> visible = ["m/n4999"];

        var (first, next) = await ListingPager.ReadAsync(backend, "", "m/", visible.Contains, 1, ListingPager.First(1), maxCalls: 10, CancellationToken.None);
        var calls = backend.Calls;
        var (second, last) = await ListingPager.ReadAsync(backend, "", "m/", visible.Contains, 1, next!.Value, maxCalls: 100, CancellationToken.None);

        Assert.Empty(first);
        Assert.Equal(10, calls);
        Assert.Equal(new ListingCursor("i:1000", ListingPager.MinChunkSize, 0), next);
        Assert.Equal(["m/n4999"], second.Select(e => e.Name));
        Assert.Null(last);
    }

    /// <summary>A backend whose cursors are opaque (an index, as AWS NextToken is to the broker) and which counts its calls.</summary>
    private sealed class OpaqueCursorBackend(IEnumerable<string> names) : ISecretListing
    {
        public string[] Names { get; } = [.. names.Order(StringComparer.Ordinal)];

        public int Calls { get; private set; }

        public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken)
        {
            Calls++;
            var start = continuation is null ? 0 : int.Parse(continuation[2..], System.Globalization.CultureInfo.InvariantCulture);
            var end = Math.Min(start + pageSize, Names.Length);
            return Task.FromResult(new SecretListingPage([.. Names[start..end].Select(n => new SecretListingEntry(n))], end < Names.Length ? $"i:{end}" : null));
        }
    }
}
