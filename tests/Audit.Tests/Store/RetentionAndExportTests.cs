using System.Security.Cryptography;
using System.Text.Json;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Store;

[Trait("Category", "Integration")]
public sealed class RetentionAndExportTests : RedisAndStoreTest
{
    [Fact]
    public async Task Retention_deletes_the_old_prefix_of_the_chain_and_Verify_still_passes_from_the_anchor()
    {
        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath,
            extraArguments: ["--Audit:Store:RetentionDays=30", "--Audit:Store:RetentionInterval=00:00:01"]);
        var now = DateTimeOffset.UtcNow;
        var old = Enumerable.Range(0, 10).Select(i => TestEvents.Make("alice", $"kv/old/{i}", time: now.AddDays(-40).AddMinutes(i))).ToList();
        var recent = Enumerable.Range(0, 5).Select(i => TestEvents.Make("alice", $"kv/new/{i}", time: now.AddMinutes(-i))).ToList();
        // Arrives late: old, but after recent records, so it stays until everything before it is old too.
        var lateOld = TestEvents.Make("bob", "kv/old/late", time: now.AddDays(-45));
        var database = await Redis.DatabaseAsync();
        foreach (var auditEvent in old.Concat(recent).Append(lateOld))
        {
            await TestEvents.AppendAsync(database, [auditEvent]);
        }

        // Retention may run while only some old events are stored; it anchors at 10 once all ten are gone.
        await Eventually.WaitUntilAsync(() => service.Scalar<long>("SELECT COALESCE(MAX(sequence), 0) FROM audit_anchor") == 10, because: "retention to delete the ten old events");
        var remaining = await service.QueryAllAsync();
        Assert.Equal(recent.Select(e => e.Id).Append(lateOld.Id), remaining.Select(s => s.Event.Id));
        Assert.Equal(11, remaining[0].Sequence);

        var verify = await service.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(6, verify.RecordsChecked);

        // The chain goes on from there.
        await TestEvents.AppendAsync(database, [TestEvents.Make("carol", "kv/new/next")]);
        await Eventually.WaitUntilAsync(() => service.Scalar<long>("SELECT MAX(sequence) FROM audit_records") == 17, because: "the next event stored");
        verify = await service.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(verify.Ok, verify.Detail);

        // Tampering with the first record after the anchor is still caught.
        using (var connection = service.OpenStore())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "UPDATE audit_records SET previous_hash = hash WHERE sequence = 11";
            command.ExecuteNonQuery();
        }
        verify = await service.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.Equal(11, verify.FirstBrokenSequence);
        Assert.Contains("anchor", verify.Detail);
    }

    [Fact]
    public async Task Export_writes_one_JSON_line_per_record_whose_hashes_can_be_checked_offline()
    {
        var events = Enumerable.Range(0, 12).Select(i => TestEvents.Make(i % 2 == 0 ? "alice" : "bob", $"kv/teams/alpha/export-{i}",
            i % 3 == 0 ? Decision.Deny : Decision.Allow)).ToList();
        await using (var service = await AuditServiceProcess.StartAsync(Redis, StorePath))
        {
            foreach (var auditEvent in events)
            {
                await TestEvents.AppendAsync(await Redis.DatabaseAsync(), [auditEvent]);
            }
            await service.WaitUntilStoredAsync(events.Count);

            // While the service runs (WAL lets readers and the writer go on together).
            var sealedFile = Path.Combine(Directory.Path, "sealed.jsonl");
            var (exitCode, _, stderr) = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
                [AuditServiceProcess.Dll, "export", "--out", sealedFile, $"--Audit:Store:Path={StorePath}"]);
            Assert.True(exitCode == 0, stderr);
            Assert.Contains("exported 12 records", stderr);
            var lines = File.ReadAllLines(sealedFile);
            Assert.Equal(events.Count, lines.Length);
            Assert.DoesNotContain("export-", File.ReadAllText(sealedFile));
            var previous = "";
            for (var i = 0; i < lines.Length; i++)
            {
                using var json = JsonDocument.Parse(lines[i]);
                var root = json.RootElement;
                Assert.Equal(i + 1, root.GetProperty("sequence").GetInt64());
                Assert.Equal(previous, root.GetProperty("previous_hash").GetString());
                var record = Convert.FromBase64String(root.GetProperty("record").GetString()!);
                var hash = Convert.ToHexStringLower(SHA256.HashData([.. Convert.FromHexString(previous), .. record]));
                Assert.Equal(hash, root.GetProperty("hash").GetString());
                Assert.Equal(events[i].Id, root.GetProperty("event").GetProperty("id").GetString());
                Assert.Equal(events[i].Caller, root.GetProperty("event").GetProperty("caller").GetString());
                previous = hash;
            }
        }

        var openFile = Path.Combine(Directory.Path, "open.jsonl");
        var opened = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [AuditServiceProcess.Dll, "export", "--out", openFile, "--open-paths", "true", $"--Audit:Store:Path={StorePath}", $"--Audit:Key={TestEvents.KeyBase64}"]);
        Assert.True(opened.ExitCode == 0, opened.StandardError);
        var paths = File.ReadAllLines(openFile).Select(line => JsonDocument.Parse(line).RootElement.GetProperty("event").GetProperty("path").GetString());
        Assert.Equal(events.Select(e => TestEvents.Key.OpenPath(e)), paths);
    }

    [Fact]
    public async Task Export_writes_a_record_turned_into_TEXT_as_unreadable_and_goes_on()
    {
        await using (var service = await AuditServiceProcess.StartAsync(Redis, StorePath))
        {
            foreach (var i in Enumerable.Range(0, 3))
            {
                await TestEvents.AppendAsync(await Redis.DatabaseAsync(), [TestEvents.Make("alice", $"kv/teams/alpha/export-{i}")]);
            }
            await service.WaitUntilStoredAsync(3);
            using var connection = service.OpenStore();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE audit_records SET record = CAST(record AS TEXT) WHERE sequence = 2";
            command.ExecuteNonQuery();
        }

        var file = Path.Combine(Directory.Path, "damaged.jsonl");
        var (exitCode, _, stderr) = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [AuditServiceProcess.Dll, "export", "--out", file, $"--Audit:Store:Path={StorePath}"]);
        Assert.True(exitCode == 0, stderr);
        var lines = File.ReadAllLines(file).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Equal([1L, 2L, 3L], lines.Select(line => line.GetProperty("sequence").GetInt64()));
        Assert.Equal("column record is TEXT, not BLOB", lines[1].GetProperty("unreadable").GetString());
        Assert.False(lines[1].TryGetProperty("event", out _));
        Assert.True(lines[2].TryGetProperty("event", out _));
    }

    [Fact]
    public async Task Export_without_out_or_without_a_store_says_what_is_missing()
    {
        var usage = await ExternalProcess.RunAsync(RepositoryLayout.DotNet, [AuditServiceProcess.Dll, "export"]);
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("usage:", usage.StandardError);

        var missing = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [AuditServiceProcess.Dll, "export", "--out", Path.Combine(Directory.Path, "x.jsonl"), $"--Audit:Store:Path={Path.Combine(Directory.Path, "none.db")}"]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no audit store at", missing.StandardError);
        Assert.False(File.Exists(Path.Combine(Directory.Path, "none.db")));
    }
}
