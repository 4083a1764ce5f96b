using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Watching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Leases;

[Trait("Category", "Integration")]
public sealed class WatchSecretsTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task A_new_kv_version_produces_exactly_one_event_per_watcher_on_every_replica_and_reads_see_it_right_after()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var replicaA = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis));
        await using var replicaB = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis));
        var clients = new[] { replicaA.CreateClient(), replicaB.CreateClient() };
        foreach (var client in clients)
        {
            Assert.Equal("2", (await client.GetSecretAsync("vault/app/db")).Version);
        }

        using var cancel = new CancellationTokenSource();
        var watches = new List<(AsyncServerStreamingCall<SecretEvent> Call, List<SecretEvent> Events, Task Reader)>();
        foreach (var client in new[] { clients[0], clients[0], clients[1] })
        {
            watches.Add(await WatchAsync(client, new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancel.Token));
        }
        int Count(List<SecretEvent> events)
        {
            lock (events)
            {
                return events.Count;
            }
        }

        Assert.Equal(3, await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-watch-v3"));
        await Eventually.WaitUntilAsync(() => watches.All(w => Count(w.Events) >= 1), TimeSpan.FromSeconds(10), "every watcher hears of version 3");
        foreach (var client in clients)
        {
            var secret = await client.GetSecretAsync("vault/app/db");
            Assert.Equal("3", secret.Version);
            Assert.Equal("FAKE-watch-v3", secret.Data["password"]);
        }

        Assert.Equal(4, await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-watch-v4"));
        await Eventually.WaitUntilAsync(() => watches.All(w => Count(w.Events) >= 2), TimeSpan.FromSeconds(10), "every watcher hears of version 4");
        Assert.Equal("4", (await clients[1].GetSecretAsync("vault/app/db")).Version);
        foreach (var (_, events, _) in watches)
        {
            lock (events)
            {
                // One event per change per watcher: no duplicates from the two replicas' pollers.
                Assert.Equal(["3", "4"], events.Select(e => e.Version));
                Assert.All(events, e => Assert.Equal("vault/app/db", e.Path));
            }
        }
        await cancel.CancelAsync();
        foreach (var (call, _, reader) in watches)
        {
            await reader;
            call.Dispose();
        }
        replicaA.Logs.AssertNoneContain(["FAKE-watch", "app/db"]);
        foreach (var (_, contents) in await redis.DumpAsync())
        {
            Assert.All(contents, c => Assert.DoesNotContain("app/db", System.Text.Encoding.UTF8.GetString(c), StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_new_version_in_a_local_file_produces_one_event_for_the_watched_path_and_prefix()
    {
        var directory = new TestDirectory();
        directory.WriteFile("secrets.yaml", """
            secrets:
              app/db:
                data: { password: FAKE-local-watch-v1 }
              app/cache:
                data: { password: FAKE-local-cache-v1 }
            """);
        var settings = CacheTestSettings.InProcessOnly();
        settings["Broker:Mounts:0:Prefix"] = "files";
        settings["Broker:Mounts:0:Type"] = "local";
        settings["Broker:Mounts:0:File"] = "secrets.yaml";
        settings["Broker:Watch:PollInterval"] = "00:00:00.200";
        await using var broker = await BrokerHost.StartAsync(settings, directory);
        var client = broker.CreateClient();
        Assert.Equal("1", (await client.GetSecretAsync("files/app/db")).Version);

        using var cancel = new CancellationTokenSource();
        var (call, events, reader) = await WatchAsync(client, new WatchSecretsRequest { Paths = { "files/app/db" }, Prefixes = { "files/app" } }, cancel.Token);
        using var _ = call;

        // Version 2 of app/db only: app/cache is unchanged.
        directory.WriteFile("secrets.yaml", """
            secrets:
              app/db:
                versions:
                  - data: { password: FAKE-local-watch-v1 }
                  - data: { password: FAKE-local-watch-v2 }
              app/cache:
                data: { password: FAKE-local-cache-v1 }
            """);
        await Eventually.WaitUntilAsync(() => { lock (events) { return events.Count >= 1; } }, TimeSpan.FromSeconds(15), "the watcher hears of version 2");
        var secret = await client.GetSecretAsync("files/app/db");
        Assert.Equal("2", secret.Version);
        Assert.Equal("FAKE-local-watch-v2", secret.Data["password"]);

        await cancel.CancelAsync();
        await reader;
        lock (events)
        {
            // Watched as a path and through its prefix, the change is still one event.
            var only = Assert.Single(events);
            Assert.Equal("files/app/db", only.Path);
            Assert.Equal("2", only.Version);
        }
        broker.Logs.AssertNoneContain(["FAKE-local", "app/db"]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_watcher_gets_no_event_for_a_version_written_before_it_subscribed(bool withRedis)
    {
        await using var redis = withRedis ? await RedisServer.StartAsync() : null;
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault, redis));
        var client = broker.CreateClient();
        using (var first = new CancellationTokenSource())
        {
            // An earlier watch leaves the broker a known version of the path (2), then goes away.
            var (call, _, reader) = await WatchAsync(client, new WatchSecretsRequest { Paths = { "vault/app/db" } }, first.Token);
            await first.CancelAsync();
            await reader;
            call.Dispose();
            var watcher = broker.Services.GetRequiredService<SecretWatcher>();
            await Eventually.WaitUntilAsync(() => watcher.SubscriptionCount == 0, TimeSpan.FromSeconds(10), "the broker ends the first watch");
        }
        Assert.Equal(3, await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-watch-unwatched-v3"));

        using var cancel = new CancellationTokenSource();
        var (watch, events, watching) = await WatchAsync(client, new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancel.Token);
        // The poller has looked at the path since this watch began (it knows version 3 now) before version 4 is written.
        var state = broker.Services.GetRequiredService<IWatchState>();
        await Eventually.WaitUntilAsync(async () => await state.GetKnownVersionAsync("vault/app/db") == "3", TimeSpan.FromSeconds(10), "the poller sees version 3");
        Assert.Equal(4, await LeaseTestEnvironment.WriteKvAsync(vault, "app/db", "FAKE-watch-v4"));
        await Eventually.WaitUntilAsync(() => { lock (events) { return events.Any(e => e.Version == "4"); } }, TimeSpan.FromSeconds(10), "the watcher hears of version 4");

        lock (events)
        {
            // Version 3 was current when this watch began: it is the watch's baseline, not a change.
            Assert.Equal(["4"], events.Select(e => e.Version));
        }
        await cancel.CancelAsync();
        await watching;
        watch.Dispose();
    }

    /// <summary>Opens a watch (returns once the baseline is set: the response headers came) and collects its events until cancelled.</summary>
    private static async Task<(AsyncServerStreamingCall<SecretEvent> Call, List<SecretEvent> Events, Task Reader)> WatchAsync(
        BrokerClient client, WatchSecretsRequest request, CancellationToken cancellationToken)
    {
        var call = client.Raw.WatchSecrets(request, cancellationToken: cancellationToken);
        await call.ResponseHeadersAsync;
        var events = new List<SecretEvent>();
        var reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var secretEvent in call.ResponseStream.ReadAllAsync(cancellationToken))
                {
                    lock (events)
                    {
                        events.Add(secretEvent);
                    }
                }
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException)
            {
            }
        }, CancellationToken.None);
        return (call, events, reader);
    }

    [Fact]
    public async Task Watching_needs_the_watch_capability_and_a_vault_kv_mount()
    {
        const string readerToken = "FAKE-test-token-reader";
        var directory = new TestDirectory();
        directory.WriteFile("watch-policy.yaml", """
            policies:
              - name: alpha-everything
                appliesTo: { subjects: [test-alpha] }
                rules:
                  - paths: ["**"]
                    capabilities: [read, list, issue, renew, revoke, watch]
              - name: reader-without-watch
                appliesTo: { subjects: [test-reader] }
                rules:
                  - paths: ["vault/**"]
                    capabilities: [read, list]
            """);
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var settings = LeaseTestEnvironment.Broker(vault);
        settings["Broker:Policy:File"] = "watch-policy.yaml";
        settings["Broker:Auth:DevTokens:Tokens:1:Subject"] = "test-reader";
        settings["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(readerToken);
        await using var broker = await BrokerHost.StartAsync(settings, directory);
        var client = broker.CreateClient().Raw;
        var reader = broker.CreateClient(readerToken);
        static async Task<StatusCode> StatusOf(SecretsBroker.V1.SecretsBroker.SecretsBrokerClient caller, WatchSecretsRequest request)
        {
            using var call = caller.WatchSecrets(request);
            var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
            return ex.StatusCode;
        }
        Assert.Equal(StatusCode.InvalidArgument, await StatusOf(client, new WatchSecretsRequest()));
        Assert.Equal(StatusCode.InvalidArgument, await StatusOf(client, new WatchSecretsRequest { Paths = { "vault//x" } }));
        Assert.Equal(StatusCode.FailedPrecondition, await StatusOf(client, new WatchSecretsRequest { Paths = { "db/short" } }));

        // The reader may read the secret but not watch it, as a path or through its folder.
        Assert.Equal("2", (await reader.GetSecretAsync("vault/app/db")).Version);
        Assert.Equal(StatusCode.PermissionDenied, await StatusOf(reader.Raw, new WatchSecretsRequest { Paths = { "vault/app/db" } }));
        Assert.Equal(StatusCode.PermissionDenied, await StatusOf(reader.Raw, new WatchSecretsRequest { Prefixes = { "vault/app" } }));

        // The same request from a caller with watch is accepted: the watch opens (its baseline is set).
        using var cancel = new CancellationTokenSource();
        var (call, _, watching) = await WatchAsync(broker.CreateClient(), new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancel.Token);
        using (call)
        {
            await cancel.CancelAsync();
            await watching;
        }
    }
}

[Trait("Category", "Integration")]
public sealed class AwsWatchSecretsTests(SecretsBroker.Broker.Tests.Aws.MotoServer moto) : IClassFixture<SecretsBroker.Broker.Tests.Aws.MotoServer>
{
    [Fact]
    public async Task PutSecretValue_in_aws_produces_one_event_per_watcher_and_reads_see_the_new_version_right_after()
    {
        var name = "w" + Guid.NewGuid().ToString("N")[..10] + "/db";
        var created = await moto.Boto3Async(new { op = "create", name, @string = """{"password":"FAKE-aws-v1"}""" });
        await using var redis = await RedisServer.StartAsync();
        var settings = SecretsBroker.Broker.Tests.Caching.CacheTestSettings.WithRedis(redis);
        foreach (var (key, value) in moto.MountConfiguration())
        {
            settings[key] = value;
        }
        settings["Broker:Mounts:0:Cache:Ttl"] = "00:10:00";
        settings["Broker:Watch:PollInterval"] = "00:00:00.200";
        await using var replicaA = await BrokerHost.StartAsync(settings);
        await using var replicaB = await BrokerHost.StartAsync(settings);
        var clients = new[] { replicaA.CreateClient(), replicaB.CreateClient() };
        foreach (var client in clients)
        {
            Assert.Equal((string)created["VersionId"]!, (await client.GetSecretAsync($"aws/{name}")).Version);
        }
        using var cancel = new CancellationTokenSource();
        var received = new[] { new List<SecretEvent>(), new List<SecretEvent>() };
        var readers = new List<Task>();
        var calls = new List<AsyncServerStreamingCall<SecretEvent>>();
        for (var i = 0; i < 2; i++)
        {
            var events = received[i];
            // One watches the exact path, the other the folder it lives in.
            var request = i == 0 ? new WatchSecretsRequest { Paths = { $"aws/{name}" } } : new WatchSecretsRequest { Prefixes = { $"aws/{name.Split('/')[0]}" } };
            var call = clients[i].Raw.WatchSecrets(request, cancellationToken: cancel.Token);
            calls.Add(call);
            await call.ResponseHeadersAsync;
            readers.Add(Task.Run(async () =>
            {
                try
                {
                    await foreach (var e in call.ResponseStream.ReadAllAsync(cancel.Token))
                    {
                        lock (events)
                        {
                            events.Add(e);
                        }
                    }
                }
                catch (Exception ex) when (ex is RpcException or OperationCanceledException)
                {
                }
            }));
        }

        var put = await moto.Boto3Async(new { op = "put", name, @string = """{"password":"FAKE-aws-v2"}""" });
        var newVersion = (string)put["VersionId"]!;
        await Eventually.WaitUntilAsync(() => received.All(r => { lock (r) { return r.Count >= 1; } }), TimeSpan.FromSeconds(15), "both watchers hear of the rotation");
        foreach (var client in clients)
        {
            var secret = await client.GetSecretAsync($"aws/{name}");
            Assert.Equal(newVersion, secret.Version);
            Assert.Equal("FAKE-aws-v2", secret.Data["password"]);
        }
        // Give a later change the chance to show any duplicate of the first one.
        var second = (string)(await moto.Boto3Async(new { op = "put", name, @string = """{"password":"FAKE-aws-v3"}""" }))["VersionId"]!;
        await Eventually.WaitUntilAsync(() => received.All(r => { lock (r) { return r.Count >= 2; } }), TimeSpan.FromSeconds(15), "both watchers hear of the second change");
        foreach (var events in received)
        {
            lock (events)
            {
                Assert.Equal([newVersion, second], events.Select(e => e.Version));
                Assert.All(events, e => Assert.Equal($"aws/{name}", e.Path));
            }
        }
        await cancel.CancelAsync();
        await Task.WhenAll(readers);
        calls.ForEach(c => c.Dispose());
    }
}
