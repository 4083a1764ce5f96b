using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.ReadApi;

[Trait("Category", "Integration")]
public sealed class ListSecretsTests
{
    [Fact]
    public async Task Pages_cover_every_secret_beneath_the_prefix_once_in_order()
    {
        var names = Enumerable.Range(0, 23).Select(i => $"projects/p{i:D2}/key").ToList();
        await using var host = await StartWithSecretsAsync(names.Append("other/outside").Append("projectsx/near-miss"));
        var client = host.CreateClient();

        var seen = new List<string>();
        var pages = 0;
        var token = "";
        do
        {
            var page = await client.ListSecretsPageAsync("lst/projects", pageSize: 5, pageToken: token);
            Assert.True(page.Secrets.Count <= 5);
            seen.AddRange(page.Secrets.Select(s => s.Path));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0);

        Assert.Equal(5, pages);
        Assert.Equal(names.Select(n => "lst/" + n), seen);
    }

    [Fact]
    public async Task The_mount_prefix_lists_the_whole_mount_and_the_client_follows_pages()
    {
        await using var host = await StartWithSecretsAsync(["a/one", "b/two", "c"]);

        var all = await host.CreateClient().ListSecretsAsync("lst", pageSize: 1).ToListAsync();

        Assert.Equal(["lst/a/one", "lst/b/two", "lst/c"], all.Select(s => s.Path));
        Assert.All(all, s => Assert.Equal("1", s.LatestVersion));
    }

    [Fact]
    public async Task A_prefix_with_nothing_beneath_it_is_an_empty_last_page()
    {
        await using var host = await StartWithSecretsAsync(["a/one"]);

        var page = await host.CreateClient().ListSecretsPageAsync("lst/zzz");

        Assert.Empty(page.Secrets);
        Assert.Equal("", page.NextPageToken);
    }

    [Fact]
    public async Task Bad_page_tokens_and_sizes_are_invalid_arguments()
    {
        await using var host = await StartWithSecretsAsync(["a/one", "a/two", "b/one"]);
        var client = host.CreateClient();
        var token = (await client.ListSecretsPageAsync("lst/a", pageSize: 1)).NextPageToken;

        var otherPrefix = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("lst/b", pageSize: 1, pageToken: token));
        var garbage = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("lst/a", pageToken: "!!not-a-token!!"));
        var tooLarge = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("lst/a", pageSize: 5000));
        var negative = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("lst/a", pageSize: -1));
        var badPrefix = await Assert.ThrowsAsync<RpcException>(() => client.ListSecretsPageAsync("lst/a/"));

        // One message for every refused token: it does not say whether the prefix, the caller or a byte was wrong.
        Assert.StartsWith("invalid page token", otherPrefix.Status.Detail);
        Assert.Equal(otherPrefix.Status.Detail, garbage.Status.Detail);
        Assert.Contains("page_size must be between 0 and 1000", tooLarge.Status.Detail);
        Assert.All(new[] { otherPrefix, garbage, tooLarge, negative, badPrefix }, e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
    }

    private static async Task<BrokerHost> StartWithSecretsAsync(IEnumerable<string> names)
    {
        var directory = new TestDirectory();
        directory.WriteFile("list.json",
            "{ \"secrets\": {" + string.Join(",", names.Select(n => $"\"{n}\": {{ \"data\": {{ \"k\": \"FAKE\" }} }}")) + "} }");
        return await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "lst",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "list.json",
        }, directory);
    }
}
