using Microsoft.Data.Sqlite;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// Writes one append's rows into SQLite inside the caller's write transaction with multi-row INSERT statements
/// (<see cref="RowsPerStatement"/> rows each, prepared once per batch), so the per-statement cost of
/// Microsoft.Data.Sqlite (reset, bind, step) is paid once per chunk rather than once per record and per path prefix.
/// The caller has left out the ids already stored, so an insert never conflicts; if one did, the statement throws and
/// the transaction rolls back (no hole in the chain).
/// </summary>
internal static class SqliteBatchWriter
{
    /// <summary>
    /// Rows per INSERT. Small on purpose: Microsoft.Data.Sqlite binds each parameter by name and SQLite finds a name by a
    /// linear search (sqlite3_bind_parameter_index), so binding costs grow with the square of the parameters per statement.
    /// </summary>
    public const int RowsPerStatement = 16;

    private const int PrefixRowsPerStatement = 64;

    private static readonly SqliteType[] RecordTypes = [SqliteType.Integer, SqliteType.Text, SqliteType.Integer, SqliteType.Text, SqliteType.Text,
        SqliteType.Integer, SqliteType.Integer, SqliteType.Blob, SqliteType.Text, SqliteType.Text];

    /// <summary>One row of audit_records, in column order.</summary>
    public readonly record struct RecordRow(long Sequence, string EventId, long EventTime, string Caller, string Action, int Decision, long StoredAt,
        byte[] Record, string PreviousHash, string Hash);

    /// <summary>The ids among <paramref name="ids"/> that audit_records already holds (IN lists of at most 500).</summary>
    public static HashSet<string> ExistingIds(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<string> ids)
    {
        var existing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chunk in ids.Chunk(500))
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "SELECT event_id FROM audit_records WHERE event_id IN (" + string.Join(',', chunk.Select((_, i) => "$i" + i)) + ")";
            for (var i = 0; i < chunk.Length; i++)
            {
                command.Parameters.Add("$i" + i, SqliteType.Text).Value = chunk[i];
            }
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                existing.Add(reader.GetString(0));
            }
        }
        return existing;
    }

    public static void InsertRecords(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<RecordRow> rows) =>
        Insert(connection, transaction, rows, RowsPerStatement,
            "INSERT INTO audit_records (sequence, event_id, event_time, caller, action, decision, stored_at, record, previous_hash, hash) VALUES ",
            RecordTypes, static (row, values) =>
            {
                values[0] = row.Sequence;
                values[1] = row.EventId;
                values[2] = row.EventTime;
                values[3] = row.Caller;
                values[4] = row.Action;
                values[5] = row.Decision;
                values[6] = row.StoredAt;
                values[7] = row.Record;
                values[8] = row.PreviousHash;
                values[9] = row.Hash;
            });

    public static void InsertPrefixes(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<(string Prefix, long Sequence)> rows) =>
        Insert(connection, transaction, rows, PrefixRowsPerStatement, "INSERT OR IGNORE INTO audit_path_prefixes (prefix_hmac, sequence) VALUES ",
            [SqliteType.Text, SqliteType.Integer], static (row, values) =>
            {
                values[0] = row.Prefix;
                values[1] = row.Sequence;
            });

    private static void Insert<T>(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<T> rows, int rowsPerStatement, string head,
        SqliteType[] types, Action<T, object[]> columns)
    {
        SqliteCommand? full = null;
        var values = new object[types.Length];
        try
        {
            for (var offset = 0; offset < rows.Count; offset += rowsPerStatement)
            {
                var count = Math.Min(rowsPerStatement, rows.Count - offset);
                // Full chunks share one prepared statement; the last, shorter one gets its own.
                var command = count == rowsPerStatement ? full ??= Prepare(connection, transaction, head, types, count) : Prepare(connection, transaction, head, types, count);
                for (var row = 0; row < count; row++)
                {
                    columns(rows[offset + row], values);
                    for (var column = 0; column < types.Length; column++)
                    {
                        command.Parameters[row * types.Length + column].Value = values[column];
                    }
                }
                command.ExecuteNonQuery();
                if (command != full)
                {
                    command.Dispose();
                }
            }
        }
        finally
        {
            full?.Dispose();
        }
    }

    private static SqliteCommand Prepare(SqliteConnection connection, SqliteTransaction transaction, string head, SqliteType[] types, int rows)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        var sql = new System.Text.StringBuilder(head);
        for (var row = 0; row < rows; row++)
        {
            sql.Append(row == 0 ? "(" : ",(");
            for (var column = 0; column < types.Length; column++)
            {
                var name = $"$p{row * types.Length + column}";
                sql.Append(column == 0 ? name : "," + name);
                command.Parameters.Add(name, types[column]);
            }
            sql.Append(')');
        }
        command.CommandText = sql.ToString();
        command.Prepare();
        return command;
    }
}
