using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// Writes one append's rows inside the caller's write transaction through two statements prepared once per append and
/// bound by position with SQLitePCLRaw (the layer Microsoft.Data.Sqlite is built on). Microsoft.Data.Sqlite binds every
/// parameter by name, and SQLite finds a name by a linear search with strncmp (sqlite3_bind_parameter_index): in a profile
/// of the drain that search was 15 % of the audit service's CPU. Bound by position, a row costs one bind per column and
/// one step. The transaction is SQLite's, per connection, so these statements are in the caller's.
/// The audit-store benchmark bulk-loads through it too.
/// </summary>
public sealed class SqliteBatchWriter : IDisposable
{
    // ON CONFLICT (event_id) DO NOTHING: a duplicate event id is skipped, and only that conflict; any other failure
    // (a sequence already taken, a NULL) still fails the statement and rolls the whole append back.
    private const string InsertRecordSql = """
        INSERT INTO audit_records (sequence, event_id, event_time, caller, action, decision, stored_at, record, previous_hash, hash)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (event_id) DO NOTHING
        """;

    private const string InsertPrefixSql = "INSERT OR IGNORE INTO audit_path_prefixes (prefix_hmac, sequence) VALUES (?1, ?2)";

    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _insertRecord;
    private readonly sqlite3_stmt _insertPrefix;

    public SqliteBatchWriter(SqliteConnection connection)
    {
        _db = connection.Handle!;
        _insertRecord = Prepare(_db, InsertRecordSql);
        _insertPrefix = Prepare(_db, InsertPrefixSql);
    }

    /// <summary>One row of audit_records, in column order.</summary>
    public readonly record struct RecordRow(long Sequence, string EventId, long EventTime, string Caller, string Action, int Decision, long StoredAt,
        byte[] Record, string PreviousHash, string Hash);

    /// <summary>Inserts the record; false when its event id is stored already (nothing written).</summary>
    public bool InsertRecord(in RecordRow row)
    {
        var statement = _insertRecord;
        Check(raw.sqlite3_bind_int64(statement, 1, row.Sequence));
        Check(raw.sqlite3_bind_text(statement, 2, row.EventId));
        Check(raw.sqlite3_bind_int64(statement, 3, row.EventTime));
        Check(raw.sqlite3_bind_text(statement, 4, row.Caller));
        Check(raw.sqlite3_bind_text(statement, 5, row.Action));
        Check(raw.sqlite3_bind_int(statement, 6, row.Decision));
        Check(raw.sqlite3_bind_int64(statement, 7, row.StoredAt));
        Check(raw.sqlite3_bind_blob(statement, 8, row.Record));
        Check(raw.sqlite3_bind_text(statement, 9, row.PreviousHash));
        Check(raw.sqlite3_bind_text(statement, 10, row.Hash));
        Step(statement);
        return raw.sqlite3_changes(_db) == 1;
    }

    public void InsertPrefix(string prefixHmac, long sequence)
    {
        Check(raw.sqlite3_bind_text(_insertPrefix, 1, prefixHmac));
        Check(raw.sqlite3_bind_int64(_insertPrefix, 2, sequence));
        Step(_insertPrefix);
    }

    public void Dispose()
    {
        _insertRecord.Dispose();
        _insertPrefix.Dispose();
    }

    private void Step(sqlite3_stmt statement)
    {
        var rc = raw.sqlite3_step(statement);
        // Reset whatever the outcome, so the statement can run again (and holds no lock); the step's own code decides.
        raw.sqlite3_reset(statement);
        if (rc != raw.SQLITE_DONE)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
            throw new SqliteException($"SQLite step returned {rc}", rc);
        }
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }

    private static sqlite3_stmt Prepare(sqlite3 db, string sql)
    {
        var rc = raw.sqlite3_prepare_v2(db, sql, out var statement);
        if (rc != raw.SQLITE_OK || statement is null)
        {
            statement?.Dispose();
            SqliteException.ThrowExceptionForRC(rc, db);
            throw new SqliteException($"SQLite could not prepare a statement ({rc})", rc);
        }
        return statement;
    }
}
