using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Policy;

[Trait("Category", "Integration")]
public sealed class PolicyReloadTests
{
    private const string GrantA = """
        policies:
          - name: only-a
            rules:
              - paths: ["pr/a"]
                capabilities: [read]
        """;

    [Fact]
    public async Task An_edited_policy_takes_effect_and_a_broken_edit_keeps_the_previous_one()
    {
        var directory = new TestDirectory();
        directory.WriteFile("s.yaml", "secrets:\n  a: { data: { k: FAKE-a } }\n  b: { data: { k: FAKE-b } }\n");
        directory.WriteFile("policy.yaml", GrantA);
        await using var host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "pr",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "s.yaml",
            ["Broker:Policy:File"] = "policy.yaml",
        }, directory);
        var client = host.CreateClient();
        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("pr/b"))).StatusCode);

        directory.WriteFile("policy.yaml", GrantA.Replace("paths: [\"pr/a\"]", "paths: [\"pr/a\", \"pr/b\"]"));
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                return (await client.GetSecretAsync("pr/b")).Data["k"] == "FAKE-b";
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
            {
                return false;
            }
        }, because: "the widened policy to be loaded");

        directory.WriteFile("policy.yaml", "policies:\n  - name: broken\n    rules:\n      - paths: [\"pr//b\"]\n        capabilities: [read]\n");
        await Eventually.WaitUntilAsync(() => host.Logs.Lines.Any(l => l.Contains("change to the policy file was ignored")), because: "the broken edit to be logged");
        Assert.Equal("FAKE-b", (await client.GetSecretAsync("pr/b")).Data["k"]);
    }
}
