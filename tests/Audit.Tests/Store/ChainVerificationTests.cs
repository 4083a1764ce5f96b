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
