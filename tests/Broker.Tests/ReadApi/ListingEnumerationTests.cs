using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>
/// Security review (issue 17, item 2): ListSecrets must not enumerate other tenants' names, through entries, page
/// sizes, page tokens or the difference between an existing and a missing folder, and its page tokens must be sealed
/// to the caller and the prefix. Each test replays an attack of the review against real brokers.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ListingEnumerationTests(ListingEnumerationFixture fixture) : IClassFixture<ListingEnumerationFixture>
{
    private const string InvalidToken = "invalid page token";

    private static readonly string[] HiddenMarkers = ["admin", "team-aaa", "break-glass", "team-alpha0", "team-beta", "zz/"];

    [Theory]
    [InlineData("kv")]
    [InlineData("kv/teams")]
    [InlineData("kv/teams/team-alpha")]
    public async Task A_page_size_1_walk_under_a_parent_yields_only_the_callers_names_in_full_pages(string prefix)
    {
        var client = fixture.Client(fixture.Replica1, "team-alpha");

        var (pages, tokens) = await WalkAsync(client, prefix, pageSize: 1);

        // A token names nothing: neither a hidden name nor the caller's own (they are sealed).
        Assert.All(tokens, token => Assert.All(HiddenMarkers.Append("team-alpha"), marker => Assert.DoesNotContain(marker, Readable(token))));
        // Exactly one page per visible name: no empty or short page tells that hidden names were skipped.
        Assert.Equal(ListingEnumerationFixture.AlphaVisible, pages.SelectMany(p => p));
        Assert.All(pages, page => Assert.Single(page));
    }

    [Fact]
    public async Task Larger_pages_are_filled_with_visible_names_and_the_last_page_has_no_token()
    {
        var client = fixture.Client(fixture.Replica1, "team-beta");

        var first = await client.ListSecretsPageAsync("kv", pageSize: 2);
        var second = await client.ListSecretsPageAsync("kv", pageSize: 2, pageToken: first.NextPageToken);

        Assert.Equal(["kv/teams/team-beta/db", "kv/teams/team-beta/deploy-key"], first.Secrets.Select(s => s.Path));
        Assert.NotEqual("", first.NextPageToken);
        Assert.Equal(["kv/teams/team-beta/registry"], second.Secrets.Select(s => s.Path));
        Assert.Equal("", second.NextPageToken);
    }

    [Theory]
    [InlineData("kv")]
    [InlineData("kv/teams")]
    [InlineData("kv/teams/team-gamma")]
    public async Task A_folder_of_only_hidden_names_pages_exactly_as_a_missing_one(string prefix)
    {
        // team-gamma has no secrets: everything under kv and kv/teams is hidden from it, and its own folder is missing.
        var client = fixture.Client(fixture.Replica1, "team-gamma");

        var page = await client.ListSecretsPageAsync(prefix, pageSize: 1);

        Assert.Empty(page.Secrets);
        Assert.Equal("", page.NextPageToken);
    }

    [Fact]
    public async Task A_foreign_folder_answers_exactly_as_a_missing_one_and_both_are_audited()
    {
        var client = fixture.Client(fixture.Replica1, "team-alpha");
        string[] prefixes = ["kv/teams/team-beta", "kv/teams/team-nobody", "kv/teams/team-alpha/break-glass", "kv/teams/team-alpha/break-glass/none", "kv/admin"];

        var errors = new List<RpcException>();
        foreach (var prefix in prefixes)
        {
            errors.Add(await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync(prefix, pageSize: 1)));
        }

        Assert.All(errors, e => Assert.Equal(StatusCode.PermissionDenied, e.StatusCode));
        Assert.Single(errors.Select(e => e.Status.Detail).Distinct());
        var events = await AuditStreamReader.ReadAllAsync(fixture.Redis);
        var shapes = prefixes.Select(prefix => Shape(Assert.Single(events, e => e.Event.Action == "list" && e.Path == prefix
            && e.Event.Caller == "system:serviceaccount:team-alpha:trainer").Event)).ToList();
        Assert.All(shapes, shape => Assert.Equal(shapes[0], shape));
        Assert.Equal(Decision.Deny, AuditEvent.Parser.ParseJson(shapes[0]).Decision);
    }

    [Fact]
    public async Task A_token_replayed_by_another_caller_for_another_prefix_or_tampered_is_refused_and_audited()
    {
        var alpha = fixture.Client(fixture.Replica1, "team-alpha");
        var alphaOther = fixture.Client(fixture.Replica1, "team-alpha", "deployer");
        var token = (await alpha.ListSecretsPageAsync("kv/teams/team-alpha", pageSize: 1)).NextPageToken;
        Assert.NotEqual("", token);

        var replayed = await Assert.ThrowsAsync<RpcException>(() => alphaOther.ListSecretsPageAsync("kv/teams/team-alpha", pageSize: 1, pageToken: token));
        var otherPrefix = await Assert.ThrowsAsync<RpcException>(() => alpha.ListSecretsPageAsync("kv/teams", pageSize: 1, pageToken: token));
        var tampered = new List<RpcException>();
        foreach (var variant in Tampered(token))
        {
            tampered.Add(await Assert.ThrowsAsync<RpcException>(() => alpha.ListSecretsPageAsync("kv/teams/team-alpha", pageSize: 1, pageToken: variant)));
        }

        Assert.All(tampered.Append(replayed).Append(otherPrefix), e =>
        {
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.StartsWith(InvalidToken, e.Status.Detail);
        });
        var events = await AuditStreamReader.ReadAllAsync(fixture.Redis);
        Assert.Contains(events, e => e.Event.Action == "list" && e.Event.Caller == "system:serviceaccount:team-alpha:deployer"
            && e.Event.GrpcStatus == (int)StatusCode.InvalidArgument && e.Event.Reason.StartsWith(InvalidToken, StringComparison.Ordinal));
        // The owner still follows its own token.
        var next = await alpha.ListSecretsPageAsync("kv/teams/team-alpha", pageSize: 1, pageToken: token);
        Assert.Equal(["kv/teams/team-alpha/registry"], next.Secrets.Select(s => s.Path));
    }

    [Fact]
    public async Task An_old_format_raw_cursor_token_is_refused()
    {
        var alpha = fixture.Client(fixture.Replica1, "team-alpha");
        // The former token: base64url(xxHash64(prefix) | raw backend cursor), which anyone could forge to start anywhere.
        var forged = RawToken("kv/teams", "teams/team-alpha0/db");

        var error = await Assert.ThrowsAsync<RpcException>(() => alpha.ListSecretsPageAsync("kv/teams", pageSize: 1, pageToken: forged));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(InvalidToken, error.Status.Detail);
    }

    [Fact]
    public async Task Replicas_accept_each_others_tokens()
    {
        var token = (await fixture.Client(fixture.Replica1, "team-alpha").ListSecretsPageAsync("kv", pageSize: 1)).NextPageToken;

        var next = await fixture.Client(fixture.Replica2, "team-alpha").ListSecretsPageAsync("kv", pageSize: 1, pageToken: token);

        Assert.Equal(["kv/teams/team-alpha/registry"], next.Secrets.Select(s => s.Path));
        Assert.Equal("", next.NextPageToken);
    }

    private static async Task<(List<List<string>> Pages, List<string> Tokens)> WalkAsync(BrokerClient client, string prefix, int pageSize)
    {
        var pages = new List<List<string>>();
        var tokens = new List<string>();
        var token = "";
        do
        {
            var page = await client.ListSecretsPageAsync(prefix, pageSize, token);
            pages.Add([.. page.Secrets.Select(s => s.Path)]);
            token = page.NextPageToken;
            if (token.Length > 0)
            {
                tokens.Add(token);
            }
            Assert.True(pages.Count <= 20, "the walk did not end");
        }
        while (token.Length > 0);
        return (pages, tokens);
    }

    /// <summary>What a token shows to whoever decodes it (base64url), as text.</summary>
    private static string Readable(string token)
    {
        var base64 = token.Replace('-', '+').Replace('_', '/');
        base64 = base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '=');
        var text = Convert.TryFromBase64String(base64, new byte[base64.Length], out var written)
            ? Encoding.Latin1.GetString(Convert.FromBase64String(base64), 0, written)
            : "";
        return token + "\n" + text;
    }

    /// <summary>The token with one byte flipped at its start, middle and end, cut short, and lengthened.</summary>
    private static IEnumerable<string> Tampered(string token)
    {
        foreach (var index in new[] { 0, token.Length / 2, token.Length - 1 })
        {
            var chars = token.ToCharArray();
            chars[index] = chars[index] == 'A' ? 'B' : 'A';
            yield return new string(chars);
        }
        yield return token[..^4];
        yield return token + "AAAA";
    }

    private static string RawToken(string prefix, string cursor)
    {
        var raw = Encoding.UTF8.GetBytes(cursor);
        var bytes = new byte[8 + raw.Length];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(prefix)));
        raw.CopyTo(bytes, 8);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>An event without what differs between any two events (ids, times, the path and its HMACs), as JSON.</summary>
    private static string Shape(AuditEvent auditEvent)
    {
        var shape = auditEvent.Clone();
        shape.Id = "";
        shape.Time = null;
        shape.RequestId = "";
        shape.TraceId = "";
        shape.SourceAddress = "";
        shape.Latency = null;
        shape.TokenHmac = "";
        shape.Path = "";
        shape.SealedPath = Google.Protobuf.ByteString.Empty;
        shape.PathPrefixHmacs.Clear();
        return Google.Protobuf.JsonFormatter.Default.Format(shape);
    }
}
