using System.Text;
using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Audit;

/// <summary>The broker's side of the audit trail, against a real redis-server.</summary>
[Trait("Category", "Integration")]
public sealed class AuditPipelineTests
{
    private const string Policy = """
        policies:
          - name: alpha-reads-alpha
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["mem/alpha/**"]
                capabilities: [read, list]
        """;

    [Fact]
    public async Task Every_allowed_and_denied_access_becomes_exactly_one_event_with_its_decision_and_caller()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartAsync(redis);
        var client = host.CreateClient();

        const int allowed = 7;
        const int denied = 5;
        for (var i = 0; i < allowed; i++)
        {
            await client.GetSecretAsync("mem/alpha/db");
        }
        for (var i = 0; i < denied; i++)
        {
            await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("mem/beta/db"));
        }
        await Assert.ThrowsAsync<RpcException>(() => host.CreateClient(token: "FAKE-wrong-token").GetSecretAsync("mem/alpha/db"));
        var batch = await client.BatchGetSecretsAsync(["mem/alpha/db", "mem/alpha/missing", "mem/beta/db"]);

        var events = await AuditStreamReader.ReadAllAsync(redis);

        Assert.Equal(allowed + denied + 1 + 3, events.Count);
        Assert.Equal(allowed + 1, events.Count(e => e.Event.Decision == Decision.Allow && e.Path == "mem/alpha/db"));
        Assert.Equal(denied + 1, events.Count(e => e.Event.Decision == Decision.Deny && e.Path == "mem/beta/db"
            && e.Event.GrpcStatus == (int)StatusCode.PermissionDenied && e.Event.Caller == "test-alpha"));
        var unauthenticated = Assert.Single(events, e => e.Event.Action == "authenticate");
        Assert.Equal(Decision.Deny, unauthenticated.Event.Decision);
        Assert.Equal("", unauthenticated.Event.Caller);
        Assert.Equal(64, unauthenticated.Event.TokenHmac.Length);
        var missing = Assert.Single(events, e => e.Path == "mem/alpha/missing");
        Assert.Equal(Decision.Error, missing.Event.Decision);
        Assert.Equal((int)StatusCode.NotFound, missing.Event.GrpcStatus);
        Assert.Equal(events.Count, events.Select(x => x.Event.Id).Distinct().Count());
        var read = events.First(e => e.Event.Decision == Decision.Allow);
        Assert.Equal("mem", read.Event.Mount);
        Assert.Equal("1", read.Event.Version);
        Assert.Equal("alpha", read.Event.CallerAttributes["team"]);
        Assert.Equal(AuditStreamReader.Key.Hmac(BrokerHost.TestToken), read.Event.TokenHmac);
        Assert.Equal(new[] { "Secret", "Error", "Error" }, BatchResultCase(batch));
    }

    [Fact]
    public async Task Refusals_made_while_converting_the_request_are_audited_too()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartAsync(redis);
        var raw = host.CreateClient().Raw;

        var emptyVersion = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.GetSecretAsync(new V1.GetSecretRequest { Path = "mem/alpha/db", Version = "" }));
        var negativeMaxAge = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.GetSecretAsync(new V1.GetSecretRequest { Path = "mem/alpha/db", MaxAge = new Google.Protobuf.WellKnownTypes.Duration { Seconds = -5 } }));

        var events = await AuditStreamReader.ReadAllAsync(redis);

        Assert.Equal(StatusCode.InvalidArgument, emptyVersion.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, negativeMaxAge.StatusCode);
        Assert.Equal(2, events.Count(e => e.Event.Action == "read" && e.Path == "mem/alpha/db" && e.Event.Decision == Decision.Error
            && e.Event.GrpcStatus == (int)StatusCode.InvalidArgument && e.Event.Caller == "test-alpha"));
    }

    [Theory]
    [InlineData(100, 1)]
    [InlineData(7, 5)]
    [InlineData(1, 30)]
    public async Task A_batch_reads_events_share_stream_entries_up_to_EventsPerEntry(int eventsPerEntry, int expectedEntries)
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        var paths = Enumerable.Range(0, 30).Select(i => $"mem/alpha/db-{i:00}").ToArray();
        foreach (var path in paths)
        {
            memory.Put(path["mem/".Length..], "1", new Dictionary<string, string> { ["password"] = "FAKE-audit-password" });
        }
        var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", Policy);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Audit:EventsPerEntry"] = eventsPerEntry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var host = await BrokerHost.StartAsync(settings, directory, memory.Register);

        var batch = await host.CreateClient().BatchGetSecretsAsync(paths);

        Assert.All(batch, result => Assert.Equal("Secret", result.ResultCase.ToString()));
        var database = await redis.DatabaseAsync();
        Assert.Equal(expectedEntries, await database.StreamLengthAsync(SecretsBroker.Audit.Contracts.AuditStream.DefaultKey));
        var events = await AuditStreamReader.ReadAllAsync(redis);
        Assert.Equal(paths.Order(), events.Select(e => e.Path!).Order());
        Assert.All(events, e => Assert.Equal(Decision.Allow, e.Event.Decision));
    }

    [Fact]
    public async Task The_stream_holds_no_secret_value_token_or_plaintext_path()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await StartAsync(redis);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/alpha/db");
        await client.BatchGetSecretsAsync(["mem/alpha/db", "mem/beta/db"]);
        await client.ListSecretsPageAsync("mem/alpha");

        var dump = await redis.DumpAsync();

        var stream = Assert.Single(dump, d => d.Key == "secretsbroker:audit");
        foreach (var forbidden in new[] { "FAKE-audit-password", "alpha/db", "mem/alpha", "beta/db", BrokerHost.TestToken })
        {
            var bytes = Encoding.UTF8.GetBytes(forbidden);
            Assert.All(stream.Contents, c => Assert.True(c.AsSpan().IndexOf(bytes) < 0, $"the audit stream holds '{forbidden}' in plaintext"));
        }
    }

    [Fact]
    public async Task Killing_redis_during_reads_spools_events_and_replays_each_exactly_once_when_it_is_back()
    {
        using var redisData = new TestDirectory();
        await using var redis = await RedisServer.StartAsync(durableIn: redisData.Path);
        await using var host = await StartAsync(redis);
        var client = host.CreateClient();

        var served = 0;
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Strict mode: a read succeeds only once its event is in the stream or the spool.
                await client.GetSecretAsync("mem/alpha/db");
                Interlocked.Increment(ref served);
            }
        });
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= 50, because: "reads before the outage");
        await redis.KillAsync();
        var atKill = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atKill + 50, because: "reads while Redis is down");
        await redis.RestartAsync();
        var atRestart = Volatile.Read(ref served);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref served) >= atRestart + 50, because: "reads after Redis is back");
        await stop.CancelAsync();
        await reader;

        await Eventually.WaitUntilAsync(async () =>
            (await AuditStreamReader.ReadAllAsync(redis)).Select(e => e.Event.Id).Distinct().Count() >= served, because: "the spool to be replayed");
        var events = await AuditStreamReader.ReadAllAsync(redis);
        // Every served read has its event. An XADD that Redis applied just before it died, but whose
        // answer was lost, is spooled and delivered again: the same event id, which the audit service
        // stores once. Nothing else may be repeated.
        Assert.Equal(served, events.Select(e => e.Event.Id).Distinct().Count());
        Assert.InRange(events.Count - served, 0, 5);
        await Eventually.WaitUntilAsync(() => host.Logs.Lines.Any(l => l.Contains("audit spool was replayed")), because: "events went through the spool");
    }

    [Fact]
    public async Task In_strict_mode_reads_fail_unavailable_and_return_no_value_when_neither_stream_nor_spool_can_record()
    {
        await using var redis = await RedisServer.StartAsync();
        using var directory = new TestDirectory();
        // A file where the spool directory should be: the spool cannot be created, even by root.
        directory.WriteFile("not-a-directory", "FAKE");
        await using var host = await StartAsync(redis, directory, ("Broker:Audit:SpoolDirectory", "not-a-directory/spool"));
        var client = host.CreateClient();
        Assert.Equal("FAKE-audit-password", (await client.GetSecretAsync("mem/alpha/db")).Data["password"]);

        await redis.KillAsync();
        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("mem/alpha/db"));
        var batch = await client.BatchGetSecretsAsync(["mem/alpha/db"]);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("audit trail cannot record", error.Status.Detail);
        Assert.Equal((int)StatusCode.Unavailable, batch[0].Error.Code);
        Assert.Null(batch[0].Secret);
    }

    [Fact]
    public async Task In_non_strict_mode_reads_go_on_when_nothing_can_record_and_the_loss_is_counted_in_the_log()
    {
        await using var redis = await RedisServer.StartAsync();
        using var directory = new TestDirectory();
        directory.WriteFile("not-a-directory", "FAKE");
        await using var host = await StartAsync(redis, directory, ("Broker:Audit:SpoolDirectory", "not-a-directory/spool"), ("Broker:Audit:Strict", "false"));
        var client = host.CreateClient();
        await redis.KillAsync();

        var secret = await client.GetSecretAsync("mem/alpha/db");

        Assert.Equal("FAKE-audit-password", secret.Data["password"]);
        await Eventually.WaitUntilAsync(() => host.Logs.Lines.Any(l => l.Contains("audit events could not be spooled")), because: "the loss to be logged");
    }

    private static string[] BatchResultCase(IReadOnlyList<V1.BatchGetSecretsResult> batch) => [.. batch.Select(b => b.ResultCase.ToString())];

    private static async Task<BrokerHost> StartAsync(RedisServer redis, TestDirectory? directory = null, params (string Key, string Value)[] extra)
    {
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-audit-password" });
        memory.Put("beta/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-audit-password-beta" });
        directory ??= new TestDirectory();
        directory.WriteFile("policy.yaml", Policy);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Policy:File"] = "policy.yaml";
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }
        return await BrokerHost.StartAsync(settings, directory, memory.Register);
    }
}
