using Grpc.Core;
using Google.Protobuf;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Store;

/// <summary>Tampering with the SQLite file directly, as someone with access to the disk would, and what Verify says.</summary>
[Trait("Category", "Integration")]
public sealed class ChainVerificationTests : IAsyncLifetime
{
    private readonly TestDirectory _directory = new();
    private RedisServer _redis = null!;
    private AuditServiceProcess _service = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _service = await AuditServiceProcess.StartAsync(_redis, Path.Combine(_directory.Path, "audit.db"));
        await TestEvents.AppendAsync(await _redis.DatabaseAsync(),
            Enumerable.Range(1, 10).Select(i => TestEvents.Make(i % 2 == 0 ? "alice" : "bob", $"kv/teams/alpha/db-{i}")));
        await _service.WaitUntilStoredAsync(10);
    }

    public async Task DisposeAsync()
    {
        await _service.DisposeAsync();
        await _redis.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task An_untouched_store_verifies()
    {
        var result = await VerifyAsync();
        Assert.True(result.Ok, result.Detail);
        Assert.Equal(10, result.RecordsChecked);
        Assert.Equal(0, result.FirstBrokenSequence);
    }

    [Fact]
    public async Task Changing_the_bytes_of_one_record_makes_Verify_name_its_sequence()
    {
        var record = AuditEvent.Parser.ParseFrom(ReadRecord(4));
        record.Caller = "someone-else";
        Execute("UPDATE audit_records SET record = $value WHERE sequence = 4", record.ToByteArray());

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(4, result.FirstBrokenSequence);
        Assert.Contains("hash does not match", result.Detail);
    }

    [Fact]
    public async Task Changing_an_indexed_column_of_one_record_makes_Verify_name_its_sequence()
    {
        Execute("UPDATE audit_records SET caller = 'someone-else' WHERE sequence = 7");

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(7, result.FirstBrokenSequence);
        Assert.Contains("column caller", result.Detail);
    }

    [Fact]
    public async Task Rewriting_a_record_and_its_hash_is_caught_at_the_next_record()
    {
        var record = AuditEvent.Parser.ParseFrom(ReadRecord(5));
        record.Decision = Decision.Allow;
        record.Reason = "rewritten";
        var bytes = record.ToByteArray();
        var previous = Scalar("SELECT previous_hash FROM audit_records WHERE sequence = 5");
        Execute($"UPDATE audit_records SET record = $value, hash = '{Service.Store.AuditStore.ChainHash(previous, bytes)}' WHERE sequence = 5", bytes);

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(6, result.FirstBrokenSequence);
        Assert.Contains("previous_hash does not match the hash of record 5", result.Detail);
    }

    [Fact]
    public async Task Deleting_a_record_makes_Verify_name_the_record_after_the_gap()
    {
        Execute("DELETE FROM audit_records WHERE sequence = 3");

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(4, result.FirstBrokenSequence);
        Assert.Contains("records 3 to 3 are missing", result.Detail);
    }

    [Fact]
    public async Task Removing_a_path_prefix_from_the_index_makes_Verify_name_the_record()
    {
        Assert.Equal("4", Scalar("SELECT COUNT(*) FROM audit_path_prefixes WHERE sequence = 9"));
        Execute("DELETE FROM audit_path_prefixes WHERE sequence = 9 AND prefix_hmac = (SELECT prefix_hmac FROM audit_path_prefixes WHERE sequence = 9 LIMIT 1)");

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(9, result.FirstBrokenSequence);
        Assert.Contains("path prefix index", result.Detail);
    }

    [Fact]
    public async Task A_record_turned_into_TEXT_makes_Verify_name_its_sequence_and_Query_flag_it_and_serve_the_rest()
    {
        Execute("UPDATE audit_records SET record = CAST(record AS TEXT) WHERE sequence = 4");
        Assert.Equal("text", Scalar("SELECT typeof(record) FROM audit_records WHERE sequence = 4"));

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(4, result.FirstBrokenSequence);
        Assert.Contains("column record is TEXT, not BLOB", result.Detail);

        // Query flags the record in place (so paging by after_sequence never stalls on it) and serves the rest.
        var all = await _service.QueryAllAsync();
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), all.Select(s => s.Sequence));
        var flagged = Assert.Single(all, s => s.Event is null);
        Assert.Equal(4, flagged.Sequence);
        Assert.Contains("column record is TEXT, not BLOB", flagged.Unreadable);
        Assert.All(all.Where(s => s.Sequence != 4), s => Assert.Equal("", s.Unreadable));
        Assert.All(all.Where(s => s.Sequence != 4), s => Assert.StartsWith("kv/teams/alpha/db-", s.Event.Path));
        using var call = _service.Client.Query(new QueryRequest { AfterSequence = 3, Limit = 1 }, AuditServiceProcess.OperatorHeaders);
        var page = await call.ResponseStream.ReadAllAsync().ToListAsync();
        Assert.Equal(4, Assert.Single(page).Sequence);
    }

    [Fact]
    public async Task A_record_whose_bytes_are_not_an_AuditEvent_is_flagged_by_Query()
    {
        Execute("UPDATE audit_records SET record = X'FFFFFFFF' WHERE sequence = 2");

        var all = await _service.QueryAllAsync();
        Assert.Equal(10, all.Count);
        Assert.Null(all[1].Event);
        Assert.Contains("not an AuditEvent", all[1].Unreadable);
        Assert.Equal(2, (await VerifyAsync()).FirstBrokenSequence);
    }

    [Theory]
    [InlineData("hash", "CAST(hash AS BLOB)", "column hash is BLOB, not TEXT")]
    [InlineData("previous_hash", "CAST(previous_hash AS BLOB)", "column previous_hash is BLOB, not TEXT")]
    [InlineData("event_id", "CAST(event_id AS BLOB)", "column event_id is BLOB, not TEXT")]
    [InlineData("caller", "CAST(caller AS BLOB)", "column caller is BLOB, not TEXT")]
    [InlineData("event_time", "'not a time'", "column event_time is TEXT, not INTEGER")]
    [InlineData("decision", "1.5", "column decision is REAL, not INTEGER")]
    [InlineData("stored_at", "X'00'", "column stored_at is BLOB, not INTEGER")]
    public async Task A_column_with_the_wrong_storage_class_is_a_broken_record_for_Verify_and_flagged_by_Query(string column, string value, string detail)
    {
        Execute($"UPDATE audit_records SET {column} = {value} WHERE sequence = 6");

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(6, result.FirstBrokenSequence);
        Assert.Contains(detail, result.Detail);

        var all = await _service.QueryAllAsync();
        Assert.Equal(10, all.Count);
        if (column is "event_id" or "caller" or "event_time" or "decision")
        {
            // Index columns are not part of what Query reads; Verify is what reports them.
            Assert.All(all, s => Assert.NotNull(s.Event));
        }
        else
        {
            Assert.Null(all[5].Event);
            Assert.Contains(detail, all[5].Unreadable);
            Assert.All(all.Where(s => s.Sequence != 6), s => Assert.NotNull(s.Event));
        }
    }

    [Fact]
    public async Task A_path_prefix_turned_into_a_BLOB_makes_Verify_name_the_record()
    {
        Execute("UPDATE audit_path_prefixes SET prefix_hmac = CAST(prefix_hmac AS BLOB) WHERE sequence = 8");

        var result = await VerifyAsync();
        Assert.False(result.Ok);
        Assert.Equal(8, result.FirstBrokenSequence);
        Assert.Contains("path prefix index", result.Detail);
    }

    private async Task<VerifyResponse> VerifyAsync() => await _service.Client.VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders);

    private byte[] ReadRecord(long sequence)
    {
        using var connection = _service.OpenStore();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT record FROM audit_records WHERE sequence = $sequence";
        command.Parameters.AddWithValue("$sequence", sequence);
        return (byte[])command.ExecuteScalar()!;
    }

    private string Scalar(string sql)
    {
        using var connection = _service.OpenStore();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)!;
    }

    private void Execute(string sql, byte[]? value = null)
    {
        using var connection = _service.OpenStore();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        if (value is not null)
        {
            command.Parameters.AddWithValue("$value", value);
        }
        command.ExecuteNonQuery();
    }
}
