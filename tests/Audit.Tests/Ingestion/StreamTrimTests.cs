using System.Globalization;
using Xunit.Abstractions;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Infrastructure;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.Ingestion;

/// <summary>The stream is trimmed once its entries are stored and acknowledged, never before (real redis-server, the service as a process).</summary>
[Trait("Category", "Integration")]
public sealed class StreamTrimTests(ITestOutputHelper output) : RedisAndStoreTest
{
    private const string Group = "secretsbroker-audit";

    [Fact]
    public async Task After_a_drained_run_the_stream_is_empty_and_Redis_memory_is_back_near_its_starting_level()
    {
        var database = await Redis.DatabaseAsync();
        var server = await Redis.AdminServerAsync();
        var before = await UsedMemoryAsync(server);
        // 300 entries of 100 events (as brokers group them): about 10 MB of stream.
        const int Entries = 300, PerEntry = 100;
        for (var entry = 0; entry < Entries; entry++)
        {
            await TestEvents.AppendGroupAsync(database, Enumerable.Range(0, PerEntry).Select(i => TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")));
        }
        var loaded = await UsedMemoryAsync(server);
        Assert.True(loaded - before > 5_000_000, $"the run should hold several MB of stream ({before} -> {loaded} bytes)");

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, extraArguments: ["--Audit:Ingestion:TrimAfterEntries=50"]);
        await service.WaitUntilStoredAsync(Entries * PerEntry);

        // Drained: every entry stored and acknowledged, so nothing is left (the documented bound when idle is 0 entries).
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 0, because: "the drained stream is trimmed");
        var after = await UsedMemoryAsync(server);
        output.WriteLine($"used_memory: {before} before, {loaded} with {Entries * PerEntry} events in {Entries} entries, {after} after the drained run");
        Assert.True(after - before < 1_000_000, $"Redis memory should return near its starting level: {before} before, {loaded} loaded, {after} after");
        var group = (await database.StreamGroupInfoAsync(AuditStream.DefaultKey)).Single(g => g.Name == Group);
        Assert.Equal(0, group.PendingMessageCount);
        Assert.Equal(Entries * PerEntry, service.CountStored());

        // New events after the trim are still delivered and stored (the group's position survived the trim).
        await TestEvents.AppendGroupAsync(database, [TestEvents.Make("bob", "kv/teams/beta/db")]);
        await service.WaitUntilStoredAsync(Entries * PerEntry + 1);
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 0, because: "trimmed again");
    }

    [Fact]
    public async Task Entries_pending_or_undelivered_in_any_group_are_never_trimmed()
    {
        var database = await Redis.DatabaseAsync();
        // A second group (a SIEM reading the stream itself) that read 3 entries and acknowledged none, then 7 it never read.
        await database.StreamCreateConsumerGroupAsync(AuditStream.DefaultKey, "siem", StreamPosition.Beginning, createStream: true);
        var first = new List<RedisValue>();
        for (var i = 0; i < 10; i++)
        {
            first.Add(await TestEvents.AppendGroupAsync(database, [TestEvents.Make("alice", $"kv/teams/alpha/db-{i}")]));
        }
        var read = await database.StreamReadGroupAsync(AuditStream.DefaultKey, "siem", "siem-1", StreamPosition.NewMessages, 3);
        Assert.Equal(3, read.Length);
        await database.StreamAcknowledgeAsync(AuditStream.DefaultKey, "siem", read[0].Id);

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, extraArguments: ["--Audit:Ingestion:TrimAfterEntries=1"]);
        await service.WaitUntilStoredAsync(10);
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 9,
            because: "only the entry every group acknowledged is trimmed");
        // The siem group's pending entries (2nd, 3rd) and undelivered ones are all still there.
        var left = await database.StreamRangeAsync(AuditStream.DefaultKey);
        Assert.Equal(first.Skip(1), left.Select(e => e.Id));

        // Once the siem group has acknowledged everything, the audit service trims the rest on its next round.
        var rest = await database.StreamReadGroupAsync(AuditStream.DefaultKey, "siem", "siem-1", StreamPosition.NewMessages, 100);
        await database.StreamAcknowledgeAsync(AuditStream.DefaultKey, "siem", [.. read.Skip(1).Select(e => e.Id), .. rest.Select(e => e.Id)]);
        await TestEvents.AppendGroupAsync(database, [TestEvents.Make("bob", "kv/teams/beta/db")]);
        await service.WaitUntilStoredAsync(11);
        // The new entry is still undelivered for the siem group: it stays, everything before it goes.
        await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) == 1, because: "trimmed to the siem group's undelivered entry");
    }

    private static async Task<long> UsedMemoryAsync(IServer server)
    {
        var info = await server.InfoAsync("memory");
        var value = info.SelectMany(g => g).First(p => p.Key == "used_memory").Value;
        return long.Parse(value, CultureInfo.InvariantCulture);
    }
}
