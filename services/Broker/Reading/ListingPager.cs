using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Reading;

/// <summary>
/// Cuts ListSecrets pages from what the caller may see (issue 17, item 2). Backend pages ("chunks") are filtered by the
/// caller's policy before a page is cut, and the broker reads further chunks until the page is full and one more visible
/// entry shows that another page follows, so neither page sizes nor the presence of a token tell of hidden names.
/// A page ends inside a chunk; the cursor then names the chunk's start and how far into it the page got, and the next
/// call asks the backend for the same chunk again (same cursor and size), which works for opaque backend cursors too.
/// </summary>
public static class ListingPager
{
    /// <summary>The smallest chunk asked of a backend, so small pages over sparsely visible folders need few calls.</summary>
    public const int MinChunkSize = 100;

    /// <summary>The cursor of a listing's first page of <paramref name="pageSize"/> entries.</summary>
    public static ListingCursor First(int pageSize) => new(null, Math.Max(pageSize + 1, MinChunkSize), 0);

    /// <summary>
    /// Reads at most <paramref name="maxCalls"/> chunks from <paramref name="start"/> and returns up to <paramref name="pageSize"/>
    /// visible entries (names with <paramref name="mountPrefix"/>) and where the next page starts (null: nothing visible follows).
    /// When the calls run out first, the page may be short (even empty) and still have a next cursor: that is the bound on work.
    /// </summary>
    public static async Task<(List<SecretListingEntry> Entries, ListingCursor? Next)> ReadAsync(ISecretListing backend, string folder,
        string mountPrefix, Func<string, bool> visible, int pageSize, ListingCursor start, int maxCalls, CancellationToken cancellationToken)
    {
        var entries = new List<SecretListingEntry>(Math.Min(pageSize, 256));
        var (cursor, chunkSize, offset) = start;
        for (var calls = 0; calls < maxCalls; calls++)
        {
            var chunk = await backend.ListAsync(folder, chunkSize, cursor, cancellationToken).ConfigureAwait(false);
            for (var i = offset; i < chunk.Entries.Count; i++)
            {
                var name = mountPrefix + chunk.Entries[i].Name;
                if (!visible(name))
                {
                    continue;
                }
                if (entries.Count == pageSize)
                {
                    // A visible entry beyond the page: the next page starts with it.
                    return (entries, new ListingCursor(cursor, chunkSize, i));
                }
                entries.Add(chunk.Entries[i] with { Name = name });
            }
            if (chunk.Continuation is null)
            {
                return (entries, null);
            }
            (cursor, offset) = (chunk.Continuation, 0);
        }
        return (entries, new ListingCursor(cursor, chunkSize, offset));
    }
}
