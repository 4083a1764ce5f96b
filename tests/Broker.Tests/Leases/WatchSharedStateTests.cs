using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.Broker.Watching;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Leases;

/// <summary>
/// A watch that cannot be registered in the replicas' shared state (Redis down or timing out: seen while opening 10,000
/// watches on a loaded machine, tests/Benchmarks/Fleet) is answered UNAVAILABLE with a reason and leaves no subscription
/// behind; once Redis is back, watches work again.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WatchSharedStateTests
{
    [Fact]
    public async Task A_watch_opened_while_redis_is_down_is_unavailable_with_a_reason_and_leaves_no_subscription()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var settings = LeaseTestEnvironment.Broker(vault, redis);
        // Not strict: the audit event goes to the spool, so the watch's own use of Redis is what fails.
        settings["Broker:Audit:Strict"] = "false";
        settings["Broker:Redis:Timeout"] = "00:00:00.500";
        await using var broker = await BrokerHost.StartAsync(settings);
        var client = broker.CreateClient();
        var watcher = broker.Services.GetRequiredService<SecretWatcher>();
        Assert.Equal("2", (await client.GetSecretAsync("vault/app/db")).Version);

        await redis.KillAsync();
        using var call = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/app/db" } });
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("the watch could not be registered with the other replicas (Redis is unavailable); retry", error.Status.Detail);
        Assert.Equal(0, watcher.SubscriptionCount);

        await redis.RestartAsync();
        using var cancel = new CancellationTokenSource();
        await Eventually.WaitUntilAsync(async () =>
        {
            using var retry = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancellationToken: cancel.Token);
            try
            {
                await retry.ResponseHeadersAsync;
                // Headers without a status: the watch is in place (a refusal ends the call with its status at once).
                return watcher.SubscriptionCount == 1;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "a watch works again once Redis is back");
        await cancel.CancelAsync();
    }
}
