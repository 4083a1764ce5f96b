using Google.Rpc;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Policy;

[Trait("Category", "Integration")]
public sealed class RateLimitTests
{
    [Fact]
    public async Task A_caller_over_its_budget_gets_resource_exhausted_with_retry_info_and_others_are_unaffected()
    {
        var directory = new TestDirectory();
        directory.WriteFile("s.yaml", "secrets:\n  a: { data: { k: FAKE-rate-value } }\n");
        directory.WriteFile("policy.yaml", """
            policies:
              - name: both
                rules:
                  - paths: ["rl/**"]
                    capabilities: [read]
            """);
        await using var host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "rl",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "s.yaml",
            ["Broker:Policy:File"] = "policy.yaml",
            // Three calls, then one token an hour: deterministic however slow the machine is.
            ["Broker:RateLimits:TokenLimit"] = "3",
            ["Broker:RateLimits:TokensPerPeriod"] = "1",
            ["Broker:RateLimits:ReplenishmentPeriod"] = "01:00:00",
            ["Broker:Auth:DevTokens:Tokens:1:Subject"] = "test-beta",
            ["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex("FAKE-test-token-beta"),
        }, directory);
        var alpha = host.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            await alpha.GetSecretAsync("rl/a");
        }
        var error = await Assert.ThrowsAsync<RpcException>(() => alpha.GetSecretAsync("rl/a"));
        var beta = await host.CreateClient(token: "FAKE-test-token-beta").GetSecretAsync("rl/a");

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.StartsWith("rate limit exceeded for this caller; retry after", error.Status.Detail);
        var retryInfo = error.GetRpcStatus()!.GetDetail<RetryInfo>();
        Assert.NotNull(retryInfo);
        Assert.True(retryInfo.RetryDelay.ToTimeSpan() > TimeSpan.Zero);
        Assert.Equal("FAKE-rate-value", beta.Data["k"]);
    }
}
