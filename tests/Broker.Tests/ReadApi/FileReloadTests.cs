using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.ReadApi;

[Trait("Category", "Integration")]
public sealed class FileReloadTests
{
    private const string VersionOne = """
        secrets:
          app/key:
            versions:
              - data: { key: FAKE-reload-v1 }
        """;

    [Fact]
    public async Task Appending_a_version_to_the_file_is_served_without_a_restart()
    {
        await using var host = await StartAsync(VersionOne);
        var client = host.CreateClient();
        Assert.Equal("1", (await client.GetSecretAsync("rl/app/key")).Version);

        host.Directory.WriteFile("reload.yaml", VersionOne + "\n      - data: { key: FAKE-reload-v2 }\n");

        await Eventually.WaitUntilAsync(async () => (await client.GetSecretAsync("rl/app/key")).Version == "2", because: "the reloaded file's version 2");
        Assert.Equal("FAKE-reload-v2", (await client.GetSecretAsync("rl/app/key")).Data["key"]);
        Assert.Equal("FAKE-reload-v1", (await client.GetSecretAsync("rl/app/key", version: "1")).Data["key"]);
    }

    [Fact]
    public async Task A_broken_edit_keeps_the_previous_contents_and_logs_why_without_values()
    {
        await using var host = await StartAsync(VersionOne);
        var client = host.CreateClient();

        host.Directory.WriteFile("reload.yaml", "secrets:\n  app/key:\n    data: [FAKE-broken-value");

        await Eventually.WaitUntilAsync(() => host.Logs.Lines.Any(l => l.Contains("previous contents kept")), because: "the failed reload to be logged");
        Assert.Equal("FAKE-reload-v1", (await client.GetSecretAsync("rl/app/key")).Data["key"]);
        host.Logs.AssertNoneContain(["FAKE-broken-value", "FAKE-reload-v1", "app/key"]);
    }

    private static async Task<BrokerHost> StartAsync(string content)
    {
        var directory = new TestDirectory();
        directory.WriteFile("reload.yaml", content);
        return await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "rl",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "reload.yaml",
        }, directory);
    }
}
