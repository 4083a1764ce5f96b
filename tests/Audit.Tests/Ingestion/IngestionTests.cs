using Google.Protobuf;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.Ingestion;

/// <summary>The audit service reading a real redis-server's stream into its store, as a real process.</summary>
[Trait("Category", "Integration")]
public sealed class IngestionTests : RedisAndStoreTest
{
    private const string Group = "secretsbroker-audit";

    [Fact]
    public async Task N_allowed_and_M_denied_events_become_exactly_N_plus_M_records_with_their_decision_and_caller()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);
        var allowed = Enumerable.Range(0, 40).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        var denied = Enumerable.Range(0, 25).Select(i => TestEvents.Make("mallory", $"kv/teams/beta/db-{i}", Decision.Deny)).ToList();
        var all = allowed.Concat(denied).OrderBy(_ => Random.Shared.Next()).ToList();

        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), all);
        await service.WaitUntilStoredAsync(all.Count);

        var stored = await service.QueryAllAsync();
        Assert.Equal(all.Count, stored.Count);
        Assert.Equal(all.Select(e => e.Id).Order(), stored.Select(s => s.Event.Id).Order());
        var byId = all.ToDictionary(e => e.Id);
        foreach (var record in stored)
        {
            var sent = byId[record.Event.Id];
            Assert.Equal(sent.Decision, record.Event.Decision);
            Assert.Equal(sent.Caller, record.Event.Caller);
            Assert.Equal(TestEvents.Key.OpenPath(sent), record.Event.Path);
        }
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), stored.Select(s => s.Sequence));
        await WaitUntilNothingPendingAsync();

        await WaitForMetricAsync(service, "secretsbroker_audit_denied_total", "", 25);
        var metrics = await WaitForMetricAsync(service, "secretsbroker_audit_consumer_lag", "", 0);
        Assert.Equal(25, MetricValue(metrics, "secretsbroker_audit_denied_total", ""));
        // No series per caller: the label set must not grow with the number of callers.
        Assert.DoesNotContain("mallory", metrics);
        Assert.DoesNotContain("alice", metrics);
        Assert.Equal(40, MetricValue(metrics, "secretsbroker_audit_events_ingested_total", "decision=\"allow\""));
        Assert.Equal(25, MetricValue(metrics, "secretsbroker_audit_events_ingested_total", "decision=\"deny\""));
        Assert.Equal(0, MetricValue(metrics, "secretsbroker_audit_consumer_pending", ""));
        Assert.DoesNotContain("kv/teams", metrics);
    }

    [Fact]
    public async Task Every_event_of_a_multi_event_entry_is_stored_in_order_and_a_bad_one_is_rejected_alone()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);
        var database = await Redis.DatabaseAsync();
        var first = Enumerable.Range(0, 100).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        var second = Enumerable.Range(0, 3).Select(i => TestEvents.Make("bob", $"kv/teams/beta/db-{i}", Decision.Deny)).ToList();

        await TestEvents.AppendGroupAsync(database, first);
        // A broken field in the middle of a group: its neighbours are still events.
        await database.StreamAddAsync(AuditStream.DefaultKey, [
            .. TestEvents.Fields(second[0].ToByteArray()),
            .. TestEvents.Fields("not protobuf at all"u8.ToArray()),
            .. TestEvents.Fields(second[1].ToByteArray()),
            .. TestEvents.Fields(second[2].ToByteArray()),
        ]);
        await service.WaitUntilStoredAsync(first.Count + second.Count);

        var stored = await service.QueryAllAsync();
        Assert.Equal(first.Concat(second).Select(e => e.Id), stored.Select(s => s.Event.Id));
        Assert.Equal(TestEvents.Key.OpenPath(first[42]), stored[42].Event.Path);
        await Eventually.WaitUntilAsync(() => service.Scalar<long>("SELECT COUNT(*) FROM audit_rejected_entries WHERE reason = 'not a protobuf AuditEvent'") == 1,
            because: "the broken field is recorded as rejected");
        await WaitUntilNothingPendingAsync();
        var metrics = await WaitForMetricAsync(service, "secretsbroker_audit_events_ingested_total", "decision=\"deny\"", 3);
        Assert.Equal(100, MetricValue(metrics, "secretsbroker_audit_events_ingested_total", "decision=\"allow\""));
    }

    [Fact]
    public async Task The_same_event_delivered_twice_is_stored_once()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);
        var database = await Redis.DatabaseAsync();
        var twice = TestEvents.Make("alice", "kv/teams/alpha/db");
        var after = TestEvents.Make("alice", "kv/teams/alpha/cache");

        // As a spool replay would: the same bytes in two stream entries, then the next event.
        await TestEvents.AppendAsync(database, [twice]);
        await service.WaitUntilStoredAsync(1);
        await TestEvents.AppendAsync(database, [twice, twice, after]);
        await Eventually.WaitUntilAsync(async () => (await service.QueryAllAsync()).Any(s => s.Event.Id == after.Id), because: "the event after the duplicates");

        var stored = await service.QueryAllAsync();
        Assert.Equal([twice.Id, after.Id], stored.Select(s => s.Event.Id));
        await WaitUntilNothingPendingAsync();
        await WaitForMetricAsync(service, "secretsbroker_audit_events_duplicate_total", "", 2);
    }

    [Fact]
    public async Task Entries_that_are_not_audit_events_are_recorded_acknowledged_and_do_not_stop_ingestion()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);
        var database = await Redis.DatabaseAsync();
        await database.StreamAddAsync(AuditStream.DefaultKey, "something-else", "hello");
        // Authenticated (a broker's bug, not a forgery), so what is checked is the content.
        await database.StreamAddAsync(AuditStream.DefaultKey, TestEvents.Fields("not protobuf at all"u8.ToArray()));
        await database.StreamAddAsync(AuditStream.DefaultKey, TestEvents.Fields(new AuditEvent { Caller = "no id" }.ToByteArray()));
        var good = TestEvents.Make("alice", "kv/teams/alpha/db");
        await TestEvents.AppendAsync(database, [good]);

        await service.WaitUntilStoredAsync(1);
        Assert.Equal(good.Id, Assert.Single(await service.QueryAllAsync()).Event.Id);
        await Eventually.WaitUntilAsync(() => service.Scalar<long>("SELECT COUNT(*) FROM audit_rejected_entries") == 3, because: "3 rejected entries recorded");
        Assert.Equal(1, service.Scalar<long>("SELECT COUNT(*) FROM audit_rejected_entries WHERE reason = 'not a protobuf AuditEvent'"));
        await WaitUntilNothingPendingAsync();
        Assert.False(service.HasExited);
    }

    [Fact]
    public async Task Forged_events_claiming_real_ids_are_rejected_before_deduplication_and_counted_and_the_real_events_are_stored()
    {
        // A second, dedicated key configured during a rotation: events under it are accepted as well as under the derived one.
        using var rotated = AuditEventMacKey.FromBase64("rotated-2", Convert.ToBase64String("FAKE-rotated-event-key-32-bytes!"u8));
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath,
            extraArguments: [$"--Audit:EventKeys:rotated-2={Convert.ToBase64String("FAKE-rotated-event-key-32-bytes!"u8)}"]);
        // Every reason is exported at zero from the start, so the alert's increase() sees the first forgery.
        var before = await WaitForMetricAsync(service, "secretsbroker_audit_events_unauthenticated_total", "reason=\"missing\"", 0);
        foreach (var reason in new[] { "malformed", "unknown_key", "mismatch" })
        {
            Assert.Equal(0, MetricValue(before, "secretsbroker_audit_events_unauthenticated_total", $"reason=\"{reason}\""));
        }
        var database = await Redis.DatabaseAsync();
        var real = Enumerable.Range(0, 3).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        // Someone who can write to Redis, and knows (or guessed) the ids, appends first, in five ways.
        using var attackersKey = AuditEventMacKey.FromAuditKey(Convert.ToBase64String("FAKE-attacker-audit-key-32bytes!"u8));
        using var attackersOwnId = AuditEventMacKey.FromBase64("attacker", Convert.ToBase64String("FAKE-attacker-event-key-32bytes!"u8));
        foreach (var genuine in real)
        {
            var forged = TestEvents.Make("mallory", "kv/teams/alpha/decoy", Decision.Allow, id: genuine.Id).ToByteArray();
            await database.StreamAddAsync(AuditStream.DefaultKey, AuditStream.EventField, forged);
            await database.StreamAddAsync(AuditStream.DefaultKey, [new(AuditStream.EventField, forged), new(AuditStream.MacField, attackersKey.Compute(forged))]);
            await database.StreamAddAsync(AuditStream.DefaultKey,
                [new(AuditStream.EventField, forged), new(AuditStream.MacField, TestEvents.MacKey.Compute(genuine.ToByteArray()))]);
            await database.StreamAddAsync(AuditStream.DefaultKey, [new(AuditStream.EventField, forged), new(AuditStream.MacField, attackersOwnId.Compute(forged))]);
            await database.StreamAddAsync(AuditStream.DefaultKey, [new(AuditStream.EventField, forged), new(AuditStream.MacField, "v1:audit-key:not-hex")]);
        }

        await TestEvents.AppendAsync(database, real.Take(2));
        var underRotatedKey = real[2].ToByteArray();
        await database.StreamAddAsync(AuditStream.DefaultKey, [new(AuditStream.EventField, underRotatedKey), new(AuditStream.MacField, rotated.Compute(underRotatedKey))]);
        await service.WaitUntilStoredAsync(real.Count);

        var stored = await service.QueryAllAsync();
        Assert.Equal(real.Select(e => e.Id), stored.Select(s => s.Event.Id));
        Assert.All(stored, s => Assert.Equal("alice", s.Event.Caller));
        await Eventually.WaitUntilAsync(() => service.Scalar<long>("SELECT COUNT(*) FROM audit_rejected_entries WHERE reason LIKE 'unauthenticated:%'") == 15,
            because: "every forged event recorded as rejected");
        var metrics = await WaitForMetricAsync(service, "secretsbroker_audit_events_unauthenticated_total", "reason=\"mismatch\"", 6);
        Assert.Equal(3, MetricValue(metrics, "secretsbroker_audit_events_unauthenticated_total", "reason=\"missing\""));
        Assert.Equal(3, MetricValue(metrics, "secretsbroker_audit_events_unauthenticated_total", "reason=\"unknown_key\""));
        Assert.Equal(3, MetricValue(metrics, "secretsbroker_audit_events_unauthenticated_total", "reason=\"malformed\""));
        // No real event was taken for a duplicate of a forged one.
        Assert.DoesNotContain("secretsbroker_audit_events_duplicate_total{", metrics);
        await WaitUntilNothingPendingAsync();
    }

    [Fact]
    public async Task Killing_the_service_mid_stream_and_restarting_it_stores_every_event_exactly_once()
    {
        // Small batches: many commits, so the kill lands mid-stream with entries read but not yet acknowledged.
        var service = await AuditServiceProcess.StartAsync(Redis, StorePath, consumerName: "replica-1", extraArguments: ["--Audit:Ingestion:BatchSize=25"]);
        await using var _ = service;
        var database = await Redis.DatabaseAsync();
        var events = Enumerable.Range(0, 3000)
            .Select(i => TestEvents.Make(i % 3 == 0 ? "bob" : "alice", $"kv/teams/alpha/db-{i}", i % 3 == 0 ? Decision.Deny : Decision.Allow)).ToList();

        var producer = Task.Run(async () =>
        {
            foreach (var chunk in events.Chunk(100))
            {
                await TestEvents.AppendAsync(database, chunk);
                await Task.Yield();
            }
        });
        await service.WaitUntilStoredAsync(300);
        await service.KillAsync();
        var storedAtKill = service.CountStored();
        await producer;
        Assert.True(storedAtKill < events.Count, "the kill must come before the service stored everything");

        await service.StartAsync();
        await service.WaitUntilStoredAsync(events.Count, TimeSpan.FromSeconds(120));
        await WaitUntilNothingPendingAsync();

        var stored = await service.QueryAllAsync(new QueryRequest { Limit = 10_000 });
        Assert.Equal(events.Count, stored.Count);
        Assert.Equal(events.Select(e => e.Id).Order(), stored.Select(s => s.Event.Id).Order());
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), stored.Select(s => s.Sequence));
        Assert.Equal(events.Count(e => e.Decision == Decision.Deny), stored.Count(s => s.Event.Decision == Decision.Deny));
        var verify = await service.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(events.Count, verify.RecordsChecked);
    }

    [Fact]
    public async Task A_restarted_consumer_first_stores_the_entries_it_had_read_but_not_acknowledged()
    {
        var database = await Redis.DatabaseAsync();
        await database.StreamCreateConsumerGroupAsync(AuditStream.DefaultKey, Group, StreamPosition.Beginning, createStream: true);
        var events = Enumerable.Range(0, 10).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        await TestEvents.AppendAsync(database, events);
        // "replica-1" read them and crashed before acknowledging.
        Assert.Equal(10, (await database.StreamReadGroupAsync(AuditStream.DefaultKey, Group, "replica-1", StreamPosition.NewMessages, 100)).Length);

        // Claiming is effectively off (a day of idle time), so only re-reading its own pending entries can store them.
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, consumerName: "replica-1",
            extraArguments: ["--Audit:Ingestion:ClaimMinIdle=1.00:00:00"]);

        await service.WaitUntilStoredAsync(10);
        await WaitUntilNothingPendingAsync();
        Assert.Contains(service.Output, line => line.Contains("Re-reading 10 pending entries", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Entries_left_pending_by_a_consumer_that_never_came_back_are_claimed_and_stored()
    {
        var database = await Redis.DatabaseAsync();
        await database.StreamCreateConsumerGroupAsync(AuditStream.DefaultKey, Group, StreamPosition.Beginning, createStream: true);
        var events = Enumerable.Range(0, 10).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")).ToList();
        await TestEvents.AppendAsync(database, events);
        Assert.Equal(10, (await database.StreamReadGroupAsync(AuditStream.DefaultKey, Group, "dead-replica", StreamPosition.NewMessages, 100)).Length);

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, consumerName: "live-replica",
            extraArguments: ["--Audit:Ingestion:ClaimMinIdle=00:00:00.300", "--Audit:Ingestion:ClaimInterval=00:00:00.200"]);

        await service.WaitUntilStoredAsync(10);
        await WaitUntilNothingPendingAsync();
        Assert.Equal(events.Select(e => e.Id).Order(), (await service.QueryAllAsync()).Select(s => s.Event.Id).Order());
        Assert.Contains(service.Output, line => line.Contains("Claimed 10 idle pending entries", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Consumers_that_left_with_nothing_pending_are_removed_from_the_group_after_their_idle_time()
    {
        var database = await Redis.DatabaseAsync();
        await database.StreamCreateConsumerGroupAsync(AuditStream.DefaultKey, Group, StreamPosition.Beginning, createStream: true);
        // A replica that joined, read nothing and went away.
        await database.ExecuteAsync("XGROUP", "CREATECONSUMER", AuditStream.DefaultKey, Group, "gone-replica");
        Assert.Contains(await database.StreamConsumerInfoAsync(AuditStream.DefaultKey, Group), c => c.Name == "gone-replica");

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, consumerName: "live-replica",
            extraArguments: ["--Audit:Ingestion:DeleteIdleConsumersAfter=00:00:00.500", "--Audit:Ingestion:ClaimInterval=00:00:00.200"]);

        await Eventually.WaitUntilAsync(async () => (await database.StreamConsumerInfoAsync(AuditStream.DefaultKey, Group)).All(c => c.Name != "gone-replica"),
            because: "the idle consumer to be removed");
        Assert.Contains(await database.StreamConsumerInfoAsync(AuditStream.DefaultKey, Group), c => c.Name == "live-replica");
        await service.WaitForOutputAsync("Removed consumer gone-replica");
    }

    [Fact]
    public async Task A_Redis_outage_does_not_stop_the_service_and_ingestion_resumes_when_Redis_is_back()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath);
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), Enumerable.Range(0, 5).Select(i => TestEvents.Make("alice", $"kv/a/{i}")));
        await service.WaitUntilStoredAsync(5);
        await WaitForHealthAsync(service, global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving);

        await Redis.KillAsync();
        await WaitForHealthAsync(service, global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing);
        await service.WaitForOutputAsync("Audit ingestion failed");

        // Redis comes back empty (no persistence): the service recreates its group and goes on.
        await Redis.RestartAsync();
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), Enumerable.Range(0, 5).Select(i => TestEvents.Make("alice", $"kv/b/{i}")));
        await service.WaitUntilStoredAsync(10);
        await WaitForHealthAsync(service, global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving);
        Assert.False(service.HasExited);
        Assert.Equal(10, (await service.QueryAllAsync()).Count);
    }

    private async Task WaitUntilNothingPendingAsync() => await Eventually.WaitUntilAsync(async () =>
    {
        var groups = await (await Redis.DatabaseAsync()).StreamGroupInfoAsync(AuditStream.DefaultKey);
        return groups.Single(g => g.Name == Group).PendingMessageCount == 0;
    }, because: "every entry acknowledged");

    /// <summary>The value of the sample of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double MetricValue(string metrics, string name, string label)
    {
        var line = metrics.Split('\n').Single(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<string> WaitForMetricAsync(AuditServiceProcess service, string name, string label, double value)
    {
        var text = "";
        await Eventually.WaitUntilAsync(async () =>
        {
            text = await service.MetricsAsync();
            return text.Split('\n').Any(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
                && MetricValue(text, name, label) == value;
        }, because: $"metric {name} {label} = {value}");
        return text;
    }

    private static Task WaitForHealthAsync(AuditServiceProcess service, global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus status) =>
        Eventually.WaitUntilAsync(async () =>
        {
            var health = new global::Grpc.Health.V1.Health.HealthClient(service.Channel);
            return (await health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest())).Status == status;
        }, because: $"health {status}");
}
