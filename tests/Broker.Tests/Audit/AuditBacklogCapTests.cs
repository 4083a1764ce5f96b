using SecretsBroker.Audit.Contracts;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using StackExchange.Redis;

namespace SecretsBroker.Broker.Tests.Audit;

/// <summary>
/// The audit service is stopped (nothing consumes or trims the stream) and the stream reaches
/// Broker:Audit:MaxBacklogEntries: the broker spools instead of appending, says so, and replays once it drains.
/// Real redis-server, the broker in process; counts, not durations.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AuditBacklogCapTests
{
    private const int Cap = 5;

    [Fact]
    public async Task At_the_cap_reads_are_spooled_readiness_is_degraded_the_metric_fires_and_the_spool_is_replayed_within_the_cap_once_drained()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-backlog-password" });
        using var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", BrokerHost.AllowTestAlphaEverything);
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:Policy:File"] = "policy.yaml";
        settings["Broker:Audit:MaxBacklogEntries"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Broker:Audit:EventsPerEntry"] = "1";
        settings["Broker:Audit:ReplayInterval"] = "00:00:00.050";
        await using var host = await BrokerHost.StartAsync(settings, directory, memory.Register);
        var client = host.CreateClient();
        var database = await redis.DatabaseAsync();

        // Strict mode: each read returns only once its event is in the stream or the spool.
        const int Reads = 20;
        for (var i = 0; i < Reads; i++)
        {
            Assert.Equal("FAKE-backlog-password", (await client.GetSecretAsync("mem/alpha/db")).Data["password"]);
        }

        // Reads one at a time: the stream stops exactly at the cap, the rest is in the spool.
        Assert.Equal(Cap, await database.StreamLengthAsync(AuditStream.DefaultKey));
        var recorder = host.Services.GetRequiredService<SecretsBroker.Broker.Audit.AuditRecorder>();
        Assert.True(recorder.Backlog.Capped);
        Assert.Equal(Reads - Cap, recorder.SpoolDepth);
        var (status, body) = await host.GetAsync("/healthz/ready");
        Assert.Equal(200, status);
        Assert.StartsWith("Degraded", body, StringComparison.Ordinal);
        Assert.Contains("backlog is at its cap", body, StringComparison.Ordinal);
        var samples = ManagementPort.Parse(await host.ScrapeAsync());
        Assert.Equal(1, samples.Single(s => s.Name == "secretsbroker_audit_backlog_capped").Value);
        Assert.Equal(Cap, samples.Single(s => s.Name == "secretsbroker_audit_backlog_entries").Value);
        Assert.Equal(Reads - Cap, samples.Single(s => s.Name == "secretsbroker_audit_spool_depth").Value);

        // The audit service comes back: it stores what is there and trims it. Each time the broker replays at most
        // a cap's worth, so the stream never holds more than the cap; in the end every read's event arrived once, in order.
        var delivered = new List<string>();
        while (delivered.Count < Reads)
        {
            await Eventually.WaitUntilAsync(async () => await database.StreamLengthAsync(AuditStream.DefaultKey) > 0, because: "the spool replayed into the drained stream");
            var entries = await database.StreamRangeAsync(AuditStream.DefaultKey);
            Assert.InRange(entries.Length, 1, Cap);
            delivered.AddRange(entries.Select(e => V1Event(e).Id));
            // Only what was read: the broker may be appending the next part meanwhile.
            await database.StreamDeleteAsync(AuditStream.DefaultKey, [.. entries.Select(e => e.Id)]);
        }
        Assert.Equal(Reads, delivered.Distinct().Count());
        await Eventually.WaitUntilAsync(() => recorder.SpoolDepth == 0 && !recorder.Backlog.Capped, because: "the spool replayed and the cap lifted");
        Assert.StartsWith("Healthy", (await host.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
        // The exporter may answer from its short scrape cache: wait for the gauge rather than read it once.
        await Eventually.WaitUntilAsync(async () => ManagementPort.Parse(await host.ScrapeAsync()).Single(s => s.Name == "secretsbroker_audit_backlog_capped").Value == 0,
            because: "the capped gauge to drop to 0");

        // Below the cap again, reads go straight to the stream.
        await client.GetSecretAsync("mem/alpha/db");
        Assert.Equal(1, await database.StreamLengthAsync(AuditStream.DefaultKey));
        Assert.Equal(0, recorder.SpoolDepth);
    }

    private static SecretsBroker.Audit.V1.AuditEvent V1Event(StreamEntry entry) =>
        SecretsBroker.Audit.V1.AuditEvent.Parser.ParseFrom((byte[])entry[AuditStream.EventField]!);
}
