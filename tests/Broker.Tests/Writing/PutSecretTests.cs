using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Writing;

/// <summary>
/// PutSecret end to end on real parts: the Vault emulator, two broker replicas on one real redis-server, a writable and
/// a read-only local file, the audit stream.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PutSecretTests
{
    private const string ReaderToken = "FAKE-test-token-reader";

    private const string Policy = """
        policies:
          - name: alpha-everything
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["**"]
                capabilities: [read, list, issue, renew, revoke, watch, write]
          - name: reader-without-write
            appliesTo: { subjects: [test-reader] }
            rules:
              - paths: ["**"]
                capabilities: [read, list, watch]
        """;

    private static Dictionary<string, string?> Settings(VaultEmulatorHost vault, RedisServer redis, TestDirectory directory)
    {
        directory.WriteFile("write-policy.yaml", Policy);
        directory.WriteFile("dev.yaml", "secrets:\n  app/token:\n    data: { token: FAKE-dev-v1 }\n");
        directory.WriteFile("frozen.yaml", "secrets:\n  app/token:\n    data: { token: FAKE-frozen-v1 }\n");
        var settings = LeaseTestEnvironment.Broker(vault, redis);
        settings["Broker:Policy:File"] = "write-policy.yaml";
        settings["Broker:Auth:DevTokens:Tokens:1:Subject"] = "test-reader";
        settings["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(ReaderToken);
        // Only PutSecret can tell watchers within this test: the poller waits an hour.
        settings["Broker:Watch:PollInterval"] = "01:00:00";
        settings["Broker:Mounts:2:Prefix"] = "dev";
        settings["Broker:Mounts:2:Type"] = "local";
        settings["Broker:Mounts:2:File"] = "dev.yaml";
        settings["Broker:Mounts:2:Writable"] = "true";
        settings["Broker:Mounts:3:Prefix"] = "frozen";
        settings["Broker:Mounts:3:Type"] = "local";
        settings["Broker:Mounts:3:File"] = "frozen.yaml";
        return settings;
    }

    private static PutSecretRequest Put(string path, string password, string? expected = null)
    {
        var request = new PutSecretRequest { Path = path, Data = { ["password"] = password } };
        if (expected is not null)
        {
            request.ExpectedVersion = expected;
        }
        return request;
    }

    [Fact]
    public async Task A_write_on_one_replica_is_served_by_the_other_at_once_watchers_hear_of_it_and_it_is_audited_without_the_value()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var directoryA = new TestDirectory();
        var directoryB = new TestDirectory();
        await using var replicaA = await BrokerHost.StartAsync(Settings(vault, redis, directoryA), directoryA);
        await using var replicaB = await BrokerHost.StartAsync(Settings(vault, redis, directoryB), directoryB);
        var a = replicaA.CreateClient();
        var b = replicaB.CreateClient();
        // Both replicas hold version 2 in their caches (ten minutes' TTL).
        Assert.Equal("2", (await a.GetSecretAsync("vault/app/db")).Version);
        Assert.Equal("2", (await b.GetSecretAsync("vault/app/db")).Version);
        Assert.NotEqual(ValueSource.Backend, (await b.GetSecretAsync("vault/app/db")).Serving.Source);
        using var cancel = new CancellationTokenSource();
        using var watch = b.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "vault/app/db" } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;

        var written = await a.PutSecretAsync("vault/app/db", new Dictionary<string, string> { ["password"] = "FAKE-put-v3" }, expectedVersion: "2");
        var onB = await b.GetSecretAsync("vault/app/db");

        Assert.Equal(("vault/app/db", "3"), (written.Path, written.Version));
        Assert.NotNull(written.CreatedTime);
        Assert.Equal("3", onB.Version);
        Assert.Equal("FAKE-put-v3", onB.Data["password"]);
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(("vault/app/db", "3"), (watch.ResponseStream.Current.Path, watch.ResponseStream.Current.Version));

        var stale = await Assert.ThrowsAsync<RpcException>(() => b.Raw.PutSecretAsync(Put("vault/app/db", "FAKE-put-stale", expected: "2")).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, stale.StatusCode);
        Assert.Equal("check-and-set failed: the current version is 3", stale.Status.Detail);

        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis)).Count(e => e.Event.Action == "write") >= 2,
            TimeSpan.FromSeconds(10), "both writes are audited");
        var writes = (await AuditStreamReader.ReadAllAsync(redis)).Where(e => e.Event.Action == "write").ToList();
        var allowed = Assert.Single(writes, e => e.Event.Decision == Decision.Allow);
        Assert.Equal(("vault/app/db", "vault", "3", ""), (allowed.Path, allowed.Event.Mount, allowed.Event.Version, allowed.Event.Path));
        var refused = Assert.Single(writes, e => e.Event.Decision != Decision.Allow);
        Assert.Equal((int)StatusCode.FailedPrecondition, refused.Event.GrpcStatus);
        Assert.Equal("vault/app/db", refused.Path);
        foreach (var (_, contents) in await redis.DumpAsync())
        {
            Assert.All(contents, c => Assert.DoesNotContain("FAKE-put", System.Text.Encoding.UTF8.GetString(c), StringComparison.Ordinal));
        }
        replicaA.Logs.AssertNoneContain(["FAKE-put", "app/db"]);
        replicaB.Logs.AssertNoneContain(["FAKE-put", "app/db"]);
        await cancel.CancelAsync();
    }

    [Fact]
    public async Task Bad_requests_and_unwritable_mounts_get_clear_statuses_and_a_caller_without_write_is_refused_and_audited()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        var directory = new TestDirectory();
        await using var broker = await BrokerHost.StartAsync(Settings(vault, redis, directory), directory);
        var client = broker.CreateClient().Raw;
        async Task<RpcException> Refused(PutSecretRequest request, SecretsBroker.V1.SecretsBroker.SecretsBrokerClient? caller = null) =>
            await Assert.ThrowsAsync<RpcException>(() => (caller ?? client).PutSecretAsync(request).ResponseAsync);

        var neither = await Refused(new PutSecretRequest { Path = "dev/app/token" });
        var both = await Refused(new PutSecretRequest { Path = "dev/app/token", Data = { ["k"] = "FAKE-x" }, BinaryData = Google.Protobuf.ByteString.CopyFrom(1) });
        var badPath = await Refused(Put("dev//app", "FAKE-x"));
        var mountRoot = await Refused(Put("dev", "FAKE-x"));
        var tooBig = await Refused(Put("dev/app/token", new string('x', 70_000)));
        var badName = await Refused(new PutSecretRequest { Path = "dev/app/token", Data = { [""] = "FAKE-x" } });
        var frozen = await Refused(Put("frozen/app/token", "FAKE-x"));
        var dynamic = await Refused(Put("db/short", "FAKE-x"));
        var noMount = await Refused(Put("nowhere/x", "FAKE-x"));
        var denied = await Refused(Put("dev/app/token", "FAKE-denied"), broker.CreateClient(ReaderToken).Raw);

        Assert.All([neither, both, badPath, mountRoot, tooBig, badName], e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        Assert.Equal("set exactly one of data (fields) and binary_data (bytes), and not empty", both.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, frozen.StatusCode);
        Assert.Contains("Writable: true", frozen.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.FailedPrecondition, dynamic.StatusCode);
        Assert.Equal(StatusCode.NotFound, noMount.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        // Nothing was written by any of them.
        Assert.Equal("1", (await broker.CreateClient().GetSecretAsync("dev/app/token")).Version);

        var written = await client.PutSecretAsync(Put("dev/app/token", "FAKE-dev-v2", expected: "1"));
        Assert.Equal("2", written.Version);
        Assert.Equal("FAKE-dev-v2", (await broker.CreateClient().GetSecretAsync("dev/app/token")).Data["password"]);
        Assert.Contains("FAKE-dev-v2", File.ReadAllText(Path.Combine(directory.Path, "dev.yaml")), StringComparison.Ordinal);

        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis)).Count(e => e.Event.Action == "write") >= 11,
            TimeSpan.FromSeconds(10), "every write attempt is audited");
        var events = (await AuditStreamReader.ReadAllAsync(redis)).Where(e => e.Event.Action == "write").ToList();
        var refusal = Assert.Single(events, e => e.Event.Caller == "test-reader");
        Assert.Equal(Decision.Deny, refusal.Event.Decision);
        Assert.Equal("dev/app/token", refusal.Path);
        Assert.Single(events, e => e.Event.Decision == Decision.Allow);
        broker.Logs.AssertNoneContain(["FAKE-dev-v2", "FAKE-denied"]);
    }
}
