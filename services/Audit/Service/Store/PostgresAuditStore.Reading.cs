using System.Data;
using System.Text;
using Npgsql;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>Query, export and Verify of the PostgreSQL store: the same answers as <see cref="AuditStore"/>'s.</summary>
public sealed partial class PostgresAuditStore
{
    private const string RecordColumnsSql = "r.sequence, r.record, r.previous_hash, r.hash, r.stored_at";

    /// <summary>Two steps, as on SQLite: the page's sequences from the filter's index, then the records in parallel slices.</summary>
    public IReadOnlyList<StoredRecord> Query(QueryFilter filter) => ScatteredRows.Read(QuerySequences(filter), ReadRecords);

    private List<long> QuerySequences(QueryFilter filter)
    {
        using var command = _dataSource.CreateCommand();
        // Each filter has an index that yields sequences in order ((caller, sequence, decision), (decision, sequence), the
        // (prefix_hmac, sequence) key), so a page stops after Limit rows; see docs/audit.md. A prefix alone needs no record row.
        var sql = new StringBuilder(filter.PathPrefixHmac is null
            ? "SELECT r.sequence FROM audit_records r WHERE r.sequence > @after"
            : QueryFilterSql.HasRecordFilter(filter)
                ? "SELECT p.sequence FROM audit_path_prefixes p JOIN audit_records r ON r.sequence = p.sequence WHERE p.prefix_hmac = @prefix AND p.sequence > @after"
                : "SELECT p.sequence FROM audit_path_prefixes p WHERE p.prefix_hmac = @prefix AND p.sequence > @after");
        QueryFilterSql.Add(command, "after", filter.AfterSequence);
        if (filter.PathPrefixHmac is { } prefix)
        {
            QueryFilterSql.Add(command, "prefix", prefix);
        }
        return QueryFilterSql.ReadPage(sql, command, filter);
    }

    private List<StoredRecord> ReadRecords(long[] sequences)
    {
        using var command = _dataSource.CreateCommand($"SELECT {RecordColumnsSql} FROM audit_records r WHERE r.sequence = ANY(@sequences)");
        command.Parameters.AddWithValue("sequences", sequences);
        var records = new List<StoredRecord>(sequences.Length);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            records.Add(ReadRecord(reader));
        }
        return records;
    }

    public IEnumerable<StoredRecord> ReadAll()
    {
        using var connection = _dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction(IsolationLevel.RepeatableRead);
        using var command = new NpgsqlCommand($"SELECT {RecordColumnsSql} FROM audit_records r ORDER BY r.sequence", connection, transaction);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadRecord(reader);
        }
    }

    public ChainAnchor? ReadAnchor()
    {
        using var connection = _dataSource.OpenConnection();
        return ReadAnchor(connection, null);
    }

    public VerifyResult Verify(CancellationToken cancellationToken)
    {
        using var connection = _dataSource.OpenConnection();
        // One snapshot: appends committed meanwhile by other replicas are not half-seen.
        using var transaction = connection.BeginTransaction(IsolationLevel.RepeatableRead);
        var anchor = ReadAnchor(connection, transaction);
        var expectedSequence = (anchor?.Sequence ?? 0) + 1;
        var expectedPrevious = anchor?.Hash ?? "";
        using var command = new NpgsqlCommand("""
            SELECT r.sequence, r.event_id, r.event_time, r.caller, r.action, r.decision, r.record, r.previous_hash, r.hash,
                   (SELECT string_agg(p.prefix_hmac, ',') FROM audit_path_prefixes p WHERE p.sequence = r.sequence)
            FROM audit_records r ORDER BY r.sequence
            """, connection, transaction);
        using var reader = command.ExecuteReader();
        long checkedCount = 0;
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            checkedCount++;
            var sequence = reader.GetInt64(0);
            if (sequence != expectedSequence)
            {
                return new VerifyResult(false, checkedCount, sequence, sequence > expectedSequence
                    ? $"records {expectedSequence} to {sequence - 1} are missing"
                    : $"sequence {sequence} is out of order (expected {expectedSequence})");
            }
            var record = (byte[])reader.GetValue(6);
            var previousHash = reader.GetString(7);
            var hash = reader.GetString(8);
            string? broken;
            if (previousHash != expectedPrevious)
            {
                broken = anchor is not null && expectedSequence == anchor.Sequence + 1
                    ? "previous_hash does not match the retention anchor's hash"
                    : $"previous_hash does not match the hash of record {sequence - 1}";
            }
            else if (!RecordChecks.IsHex(previousHash) || RecordChecks.ChainHash(previousHash, record) != hash)
            {
                broken = "hash does not match SHA-256(previous_hash || record): the record or its hash was changed";
            }
            else
            {
                broken = RecordChecks.CheckColumns(record, reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4), reader.GetInt32(5),
                    reader.IsDBNull(9) ? null : reader.GetString(9));
            }
            if (broken is not null)
            {
                return new VerifyResult(false, checkedCount, sequence, broken);
            }
            expectedSequence++;
            expectedPrevious = hash;
        }
        return new VerifyResult(true, checkedCount, 0, "");
    }

    private static StoredRecord ReadRecord(NpgsqlDataReader reader) =>
        new(reader.GetInt64(0), (byte[])reader.GetValue(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4));

    private static ChainAnchor? ReadAnchor(NpgsqlConnection connection, NpgsqlTransaction? transaction)
    {
        using var command = new NpgsqlCommand("SELECT sequence, hash FROM audit_anchor WHERE id = 1", connection, transaction);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new ChainAnchor(reader.GetInt64(0), reader.GetString(1)) : null;
    }
}
