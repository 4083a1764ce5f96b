// Longer than the project's ~350-line guide on purpose: the chain head, the write transaction and the schema are one
// invariant (every append reads the head inside its transaction), and appends, queries, verification and retention
// share the connection handling that keeps it. PostgresAuditStore is the same store on PostgreSQL (IAuditStore).
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// The hash-chained audit store in one SQLite file (WAL, synchronous=FULL, so a committed append survives
/// a crash). Each record keeps the event's protobuf bytes exactly as stored, the previous record's hash and
/// its own hash = SHA-256(previous hash bytes || record bytes). Appends are idempotent on the event id.
/// Several processes may share the file: every append reads the chain head inside its write transaction.
/// </summary>
public sealed class AuditStore : IAuditStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS audit_records (
            sequence      INTEGER PRIMARY KEY,
            event_id      TEXT    NOT NULL UNIQUE,
            event_time    INTEGER NOT NULL, -- unix nanoseconds
            caller        TEXT    NOT NULL,
            action        TEXT    NOT NULL,
            decision      INTEGER NOT NULL,
            stored_at     INTEGER NOT NULL, -- unix milliseconds
            record        BLOB    NOT NULL, -- the AuditEvent's protobuf bytes (path sealed)
            previous_hash TEXT    NOT NULL,
            hash          TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_records_event_time ON audit_records (event_time);
        -- decision after sequence: a caller's page still walks in sequence order, and a caller + decision query checks the
        -- decision in the index before it reads a row (over 10M events: 1,273 ms a page when it read every row of the caller).
        CREATE INDEX IF NOT EXISTS audit_records_caller_sequence_decision ON audit_records (caller, sequence, decision);
        DROP INDEX IF EXISTS audit_records_caller; -- replaced by the one above (stores made before it)
        CREATE INDEX IF NOT EXISTS audit_records_decision ON audit_records (decision, sequence);
        CREATE TABLE IF NOT EXISTS audit_path_prefixes (
            prefix_hmac TEXT    NOT NULL,
            sequence    INTEGER NOT NULL,
            PRIMARY KEY (prefix_hmac, sequence)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS audit_path_prefixes_sequence ON audit_path_prefixes (sequence);
        CREATE TABLE IF NOT EXISTS audit_anchor (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            sequence   INTEGER NOT NULL,
            hash       TEXT    NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS audit_rejected_entries (
            id          INTEGER PRIMARY KEY,
            stream_id   TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            size        INTEGER NOT NULL,
            sha256      TEXT    NOT NULL,
            received_at INTEGER NOT NULL,
            UNIQUE (stream_id, sha256)
        );
        """;

    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly long _cacheKiB;

    public AuditStore(IOptions<StoreOptions> options, IHostEnvironment environment, TimeProvider time)
    {
        _time = time;
        _cacheKiB = options.Value.SqliteCacheMiB * 1024L;
        FilePath = ResolvePath(options.Value, environment);
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = FilePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        using var connection = Open();
        Execute(connection, null, "PRAGMA journal_mode = WAL;");
        Execute(connection, null, Schema);
    }

    /// <summary>The store file's full path: <see cref="StoreOptions.Path"/> relative to the content root.</summary>
    public static string ResolvePath(StoreOptions options, IHostEnvironment environment) => Path.GetFullPath(options.Path, environment.ContentRootPath);

    /// <summary>The full path of the SQLite file.</summary>
    public string FilePath { get; }

    /// <summary>SHA-256 (lower-case hex) over the previous hash's bytes (none before the first record) and the record's bytes.</summary>
    public static string ChainHash(string previousHash, ReadOnlySpan<byte> record) => RecordChecks.ChainHash(previousHash, record);

    public static long UnixNanos(Google.Protobuf.WellKnownTypes.Timestamp time) => time.Seconds * 1_000_000_000L + time.Nanos;

    /// <summary>
    /// Stores every event whose id is not stored yet, in order, and records the rejected entries, in one
    /// transaction: when this returns, all of it is durable; when it throws, none of it was written.
    /// </summary>
    public async Task<AppendResult> AppendAsync(IReadOnlyList<IncomingEvent> events, IReadOnlyList<RejectedEntry> rejected, CancellationToken cancellationToken)
    {
        // Serialized before the write lock: only hashing, which needs the head, happens inside it.
        var records = events.Select(e => e.Record).ToArray();
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var transaction = connection.BeginTransaction(deferred: false);
            var (sequence, hash) = ReadHead(connection, transaction);
            var storedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();

            // An id already stored (by this or another process sharing the file, or earlier in this batch) is skipped by the
            // insert itself; under this write transaction nobody else can add one meanwhile. Only then does the chain move on.
            var stored = new List<IncomingEvent>(events.Count);
            var duplicates = 0;
            using (var writer = new SqliteBatchWriter(connection))
            {
                for (var index = 0; index < events.Count; index++)
                {
                    var incoming = events[index];
                    var auditEvent = incoming.Event;
                    var next = ChainHash(hash, records[index]);
                    if (!writer.InsertRecord(new(sequence + 1, auditEvent.Id, UnixNanos(auditEvent.Time), auditEvent.Caller, auditEvent.Action,
                        (int)auditEvent.Decision, storedAt, records[index], hash, next)))
                    {
                        duplicates++;
                        continue;
                    }
                    sequence++;
                    hash = next;
                    foreach (var prefixHmac in auditEvent.PathPrefixHmacs)
                    {
                        writer.InsertPrefix(prefixHmac, sequence);
                    }
                    stored.Add(incoming);
                }
            }

            var rejectedCount = 0;
            if (rejected.Count > 0)
            {
                using var reject = Command(connection, transaction, """
                    INSERT OR IGNORE INTO audit_rejected_entries (stream_id, reason, size, sha256, received_at)
                    VALUES ($stream_id, $reason, $size, $sha256, $received_at)
                    """);
                foreach (var entry in rejected)
                {
                    reject.Parameters.Clear();
                    reject.Parameters.AddWithValue("$stream_id", entry.StreamId);
                    reject.Parameters.AddWithValue("$reason", entry.Reason);
                    reject.Parameters.AddWithValue("$size", entry.Size);
                    reject.Parameters.AddWithValue("$sha256", entry.Sha256);
                    reject.Parameters.AddWithValue("$received_at", storedAt);
                    rejectedCount += reject.ExecuteNonQuery();
                }
            }
            transaction.Commit();
            return new AppendResult(stored, duplicates, rejectedCount);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Records matching every filter, by ascending sequence, at most <see cref="QueryFilter.Limit"/>.</summary>
    /// <remarks>
    /// Two steps: the page's sequences from the index that serves the filter (it holds the caller, decision and prefix
    /// columns, so no record is read for those), then the records themselves, in parallel slices (<see cref="ScatteredRows"/>).
    /// </remarks>
    public IReadOnlyList<StoredRecord> Query(QueryFilter filter) => ScatteredRows.Read(QuerySequences(filter), ReadRecords);

    private List<long> QuerySequences(QueryFilter filter)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        // With a prefix, the (prefix_hmac, sequence) key drives the scan in sequence order, so a page reads
        // only its own rows however many records share the prefix.
        var timeWindow = filter.PathPrefixHmac is null && (filter.FromUnixNanos is not null || filter.ToUnixNanos is not null);
        var sql = new System.Text.StringBuilder(filter.PathPrefixHmac is not null
            ? QueryFilterSql.HasRecordFilter(filter)
                ? "SELECT p.sequence FROM audit_path_prefixes p CROSS JOIN audit_records r ON r.sequence = p.sequence WHERE p.prefix_hmac = @prefix AND p.sequence > @after"
                : "SELECT p.sequence FROM audit_path_prefixes p WHERE p.prefix_hmac = @prefix AND p.sequence > @after"
            : timeWindow
                // SQLite's planner walks the primary key for ORDER BY sequence and filters event_time, reading on average half
                // the table before the window; and given two lower bounds on sequence it uses only one ($after: 478 ms a page
                // over 1M records). So the one bound is the larger of $after and the window's first sequence (read from the
                // event_time index; "+" keeps SQLite from answering MIN by walking the primary key): 1 ms (docs/benchmarks.md).
                // No record in the window: MIN is NULL, the bound is NULL and the page is empty, as it should be.
                ? "SELECT r.sequence FROM audit_records r WHERE r.sequence > max(@after, (SELECT MIN(+sequence) FROM audit_records WHERE 1 = 1"
                    + (filter.FromUnixNanos is null ? "" : " AND event_time >= @from") + (filter.ToUnixNanos is null ? "" : " AND event_time < @to") + ") - 1)"
                : "SELECT r.sequence FROM audit_records r WHERE r.sequence > @after");
        QueryFilterSql.Add(command, "after", filter.AfterSequence);
        if (filter.PathPrefixHmac is { } prefixHmac)
        {
            QueryFilterSql.Add(command, "prefix", prefixHmac);
        }
        return QueryFilterSql.ReadPage(sql, command, filter);
    }

    private List<StoredRecord> ReadRecords(long[] sequences)
    {
        using var connection = Open();
        // One parameter for the whole slice (a JSON array), not one per sequence.
        using var command = Command(connection, null,
            "SELECT sequence, record, previous_hash, hash, stored_at FROM audit_records WHERE sequence IN (SELECT value FROM json_each(@sequences))");
        QueryFilterSql.Add(command, "sequences", "[" + string.Join(',', sequences) + "]");
        var records = new List<StoredRecord>(sequences.Length);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            records.Add(ReadRecord(reader));
        }
        return records;
    }

    /// <summary>Every record in sequence order (for export), read in one snapshot.</summary>
    public IEnumerable<StoredRecord> ReadAll()
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction(deferred: true);
        using var command = Command(connection, transaction, "SELECT sequence, record, previous_hash, hash, stored_at FROM audit_records ORDER BY sequence");
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadRecord(reader);
        }
    }

    public ChainAnchor? ReadAnchor()
    {
        using var connection = Open();
        return ReadAnchor(connection, null);
    }

    /// <summary>
    /// Recomputes the chain from the anchor (or the start): sequences must follow each other, each
    /// previous_hash must be the hash before it, each hash must match the record's bytes, and the indexed
    /// columns and path prefixes must match what the record says. Stops at the first broken record.
    /// </summary>
    public VerifyResult Verify(CancellationToken cancellationToken)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction(deferred: true);
        var anchor = ReadAnchor(connection, transaction);
        var expectedSequence = (anchor?.Sequence ?? 0) + 1;
        var expectedPrevious = anchor?.Hash ?? "";
        using var command = Command(connection, transaction, """
            SELECT r.sequence, r.event_id, r.event_time, r.caller, r.action, r.decision, r.record, r.previous_hash, r.hash,
                   (SELECT group_concat(p.prefix_hmac, ',') FROM audit_path_prefixes p WHERE p.sequence = r.sequence), r.stored_at,
                   (SELECT COUNT(*) FROM audit_path_prefixes p WHERE p.sequence = r.sequence AND typeof(p.prefix_hmac) <> 'text')
            FROM audit_records r ORDER BY r.sequence
            """);
        using var reader = command.ExecuteReader();
        long checkedCount = 0;
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            checkedCount++;
            var sequence = reader.GetInt64(0);
            string? broken = null;
            if (sequence != expectedSequence)
            {
                broken = sequence > expectedSequence
                    ? $"records {expectedSequence} to {sequence - 1} are missing"
                    : $"sequence {sequence} is out of order (expected {expectedSequence})";
            }
            else if (StorageClass.Mismatch(reader, (6, StorageClass.Blob), (7, StorageClass.Text), (8, StorageClass.Text), (1, StorageClass.Text),
                (2, StorageClass.Integer), (3, StorageClass.Text), (4, StorageClass.Text), (5, StorageClass.Integer), (10, StorageClass.Integer)) is { } mismatch)
            {
                broken = mismatch;
            }
            if (broken is not null)
            {
                return new VerifyResult(false, checkedCount, sequence, broken);
            }
            var record = (byte[])reader.GetValue(6);
            var previousHash = reader.GetString(7);
            var hash = reader.GetString(8);
            if (previousHash != expectedPrevious)
            {
                broken = expectedSequence == (anchor?.Sequence ?? 0) + 1 && anchor is not null
                    ? "previous_hash does not match the retention anchor's hash"
                    : $"previous_hash does not match the hash of record {sequence - 1}";
            }
            else if (!RecordChecks.IsHex(previousHash) || ChainHash(previousHash, record) != hash)
            {
                broken = "hash does not match SHA-256(previous_hash || record): the record or its hash was changed";
            }
            else
            {
                broken = CheckColumns(reader, record);
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

    /// <summary>
    /// Deletes the oldest records whose event time is before <paramref name="cutoff"/>, as a prefix of the
    /// chain (a record goes once it and every record before it are older), and moves the anchor to the last
    /// deleted record so Verify still checks the rest. Returns how many records were deleted.
    /// </summary>
    public async Task<long> DeleteOlderThanAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var transaction = connection.BeginTransaction(deferred: false);
            var cutoffNanos = (cutoff.ToUnixTimeMilliseconds()) * 1_000_000L;
            using var bounds = Command(connection, transaction,
                "SELECT (SELECT MIN(sequence) FROM audit_records WHERE event_time >= $cutoff), (SELECT MAX(sequence) FROM audit_records), (SELECT MIN(sequence) FROM audit_records)");
            bounds.Parameters.AddWithValue("$cutoff", cutoffNanos);
            using var reader = bounds.ExecuteReader();
            reader.Read();
            if (reader.IsDBNull(1))
            {
                return 0;
            }
            var upTo = reader.IsDBNull(0) ? reader.GetInt64(1) : reader.GetInt64(0) - 1;
            var first = reader.GetInt64(2);
            reader.Close();
            if (upTo < first)
            {
                return 0;
            }
            using var anchorHash = Command(connection, transaction, "SELECT hash FROM audit_records WHERE sequence = $sequence");
            anchorHash.Parameters.AddWithValue("$sequence", upTo);
            var hash = (string)anchorHash.ExecuteScalar()!;
            using var delete = Command(connection, transaction, """
                DELETE FROM audit_path_prefixes WHERE sequence <= $sequence;
                DELETE FROM audit_records WHERE sequence <= $sequence;
                INSERT INTO audit_anchor (id, sequence, hash, created_at) VALUES (1, $sequence, $hash, $now)
                    ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, created_at = excluded.created_at;
                """);
            delete.Parameters.AddWithValue("$sequence", upTo);
            delete.Parameters.AddWithValue("$hash", hash);
            delete.Parameters.AddWithValue("$now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            delete.ExecuteNonQuery();
            transaction.Commit();
            return upTo - first + 1;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Whether the file can be opened and read.</summary>
    public bool CanRead()
    {
        using var connection = Open();
        using var command = Command(connection, null, "SELECT COUNT(*) FROM audit_anchor");
        command.ExecuteScalar();
        return true;
    }

    public void Dispose()
    {
        _writeLock.Dispose();
        SqliteConnection.ClearAllPools();
    }

    private static string? CheckColumns(SqliteDataReader reader, byte[] record)
    {
        var broken = RecordChecks.CheckColumns(record, reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4), reader.GetInt32(5),
            reader.IsDBNull(9) ? null : reader.GetString(9));
        // A prefix stored with another storage class than TEXT (SQLite's own failure mode) is named as such.
        return reader.GetInt64(11) > 0 && broken is null or RecordChecks.PrefixMismatch
            ? "the path prefix index does not match the record: a prefix_hmac is not TEXT"
            : broken;
    }

    /// <summary>A row as a <see cref="StoredRecord"/>, or one marked unreadable (with whatever hashes are TEXT) when a column has the wrong storage class.</summary>
    private static StoredRecord ReadRecord(SqliteDataReader reader)
    {
        var sequence = reader.GetInt64(0);
        if (StorageClass.Mismatch(reader, (1, StorageClass.Blob), (2, StorageClass.Text), (3, StorageClass.Text), (4, StorageClass.Integer)) is { } mismatch)
        {
            return new StoredRecord(sequence, [], reader.GetValue(2) as string ?? "", reader.GetValue(3) as string ?? "", 0, mismatch);
        }
        return new(sequence, (byte[])reader.GetValue(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4));
    }

    private static (long Sequence, string Hash) ReadHead(SqliteConnection connection, SqliteTransaction transaction)
    {
        using var command = Command(connection, transaction, "SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1");
        using var reader = command.ExecuteReader();
        if (reader.Read())
        {
            return (reader.GetInt64(0), reader.GetString(1));
        }
        reader.Close();
        return ReadAnchor(connection, transaction) is { } anchor ? (anchor.Sequence, anchor.Hash) : (0, "");
    }

    private static ChainAnchor? ReadAnchor(SqliteConnection connection, SqliteTransaction? transaction)
    {
        using var command = Command(connection, transaction, "SELECT sequence, hash FROM audit_anchor WHERE id = 1");
        using var reader = command.ExecuteReader();
        return reader.Read() ? new ChainAnchor(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        // synchronous is per connection: FULL makes every commit fsync the WAL before it returns.
        // cache_size is per connection too (pooled connections keep theirs): SQLite's default of 2 MB re-reads index pages
        // from the OS on every append once the indexes outgrow it (docs/audit.md, Audit:Store:SqliteCacheMiB).
        Execute(connection, null, $"PRAGMA synchronous = FULL; PRAGMA cache_size = -{_cacheKiB};");
        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = Command(connection, transaction, sql);
        command.ExecuteNonQuery();
    }
}
