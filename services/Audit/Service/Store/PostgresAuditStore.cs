using System.Data;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// The hash-chained audit store on PostgreSQL, for audit-service replicas on several hosts appending to one
/// chain. The chain head is a one-row table: every append and every retention run locks it (SELECT ... FOR
/// UPDATE) first, so writers on any host take turns on the head while readers never wait. A batch is one
/// transaction: the head lock, one lookup of the batch's ids, then the rows with binary COPY (PostgreSQL's fastest
/// way in: no per-row statement, parse or ON CONFLICT speculative insertion), whatever its size. The event id is
/// UNIQUE; under the head lock the duplicates were already left out, so a conflict there (which would leave a hole
/// in the chain) fails the COPY and the batch is rolled back.
/// Same rows, hashes and checks as <see cref="AuditStore"/> (SQLite).
/// </summary>
public sealed partial class PostgresAuditStore : IAuditStore
{
    // Any constant, the same for every replica: schema creation takes it so replicas starting together do not race.
    private const long SchemaLockKey = 0x5EC2_B40C_A0D1;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS audit_records (
            sequence      bigint  PRIMARY KEY,
            event_id      text    NOT NULL CONSTRAINT audit_records_event_id_key UNIQUE,
            event_time    bigint  NOT NULL, -- unix nanoseconds
            caller        text    NOT NULL,
            action        text    NOT NULL,
            decision      integer NOT NULL,
            stored_at     bigint  NOT NULL, -- unix milliseconds
            record        bytea   NOT NULL, -- the AuditEvent's protobuf bytes (path sealed)
            previous_hash text    NOT NULL,
            hash          text    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_records_event_time ON audit_records (event_time);
        -- decision after sequence: a caller's page still comes in sequence order, and a caller + decision page is found in
        -- the index alone (an index-only scan for the sequences) instead of reading every row of the caller.
        CREATE INDEX IF NOT EXISTS audit_records_caller_sequence_decision ON audit_records (caller, sequence, decision);
        DROP INDEX IF EXISTS audit_records_caller; -- replaced by the one above (stores made before it)
        CREATE INDEX IF NOT EXISTS audit_records_decision ON audit_records (decision, sequence);
        CREATE TABLE IF NOT EXISTS audit_path_prefixes (
            prefix_hmac text   NOT NULL,
            sequence    bigint NOT NULL,
            PRIMARY KEY (prefix_hmac, sequence)
        );
        CREATE INDEX IF NOT EXISTS audit_path_prefixes_sequence ON audit_path_prefixes (sequence);
        CREATE TABLE IF NOT EXISTS audit_chain_head (
            id       integer PRIMARY KEY CHECK (id = 1),
            sequence bigint  NOT NULL,
            hash     text    NOT NULL
        );
        INSERT INTO audit_chain_head (id, sequence, hash) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING;
        CREATE TABLE IF NOT EXISTS audit_anchor (
            id         integer PRIMARY KEY CHECK (id = 1),
            sequence   bigint  NOT NULL,
            hash       text    NOT NULL,
            created_at bigint  NOT NULL
        );
        CREATE TABLE IF NOT EXISTS audit_rejected_entries (
            id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            stream_id   text    NOT NULL,
            reason      text    NOT NULL,
            size        integer NOT NULL,
            sha256      text    NOT NULL,
            received_at bigint  NOT NULL,
            UNIQUE (stream_id, sha256)
        );
        """;

    private const string CopyRecords =
        "COPY audit_records (sequence, event_id, event_time, caller, action, decision, stored_at, record, previous_hash, hash) FROM STDIN (FORMAT BINARY)";

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;

    public PostgresAuditStore(IOptions<StoreOptions> options, TimeProvider time)
    {
        _time = time;
        _dataSource = NpgsqlDataSource.Create(options.Value.ConnectionString!);
        using var connection = _dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        using (var lockSchema = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
        {
            lockSchema.Parameters.AddWithValue("key", SchemaLockKey);
            lockSchema.ExecuteNonQuery();
        }
        using (var create = new NpgsqlCommand(Schema, connection, transaction))
        {
            create.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    /// <summary>Why <paramref name="connectionString"/> cannot be used, or null (checked at start, before any connection).</summary>
    public static string? ConnectionStringProblem(string connectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            return string.IsNullOrWhiteSpace(builder.Host) ? "it names no Host" : null;
        }
        catch (Exception exception) when (exception is ArgumentException or FormatException or InvalidCastException)
        {
            // The message names the keyword, never the value (the string may hold a password).
            return exception.GetType() == typeof(ArgumentException) ? "a keyword is unknown or malformed" : "a value has the wrong type";
        }
    }

    public async Task<AppendResult> AppendAsync(IReadOnlyList<IncomingEvent> events, IReadOnlyList<RejectedEntry> rejected, CancellationToken cancellationToken)
    {
        // Serialized before the head is locked: only hashing, which needs the head, happens under the lock.
        var records = events.Select(e => e.Record).ToArray();
        using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);

        // Waits for any other writer's transaction; READ COMMITTED then sees what it committed, head and rows.
        var (sequence, hash) = await ReadHeadForUpdateAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        var storedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var existing = await ExistingIdsAsync(connection, transaction, events, cancellationToken).ConfigureAwait(false);

        var stored = new List<IncomingEvent>(events.Count);
        var duplicates = 0;
        var rows = new List<(long Sequence, V1.AuditEvent Event, byte[] Record, string Previous, string Hash)>(events.Count);
        var prefixes = new List<(string Prefix, long Sequence)>();
        for (var index = 0; index < events.Count; index++)
        {
            var auditEvent = events[index].Event;
            if (!existing.Add(auditEvent.Id))
            {
                duplicates++;
                continue;
            }
            var previous = hash;
            hash = RecordChecks.ChainHash(previous, records[index]);
            sequence++;
            rows.Add((sequence, auditEvent, records[index], previous, hash));
            foreach (var prefix in auditEvent.PathPrefixHmacs.Distinct(StringComparer.Ordinal))
            {
                prefixes.Add((prefix, sequence));
            }
            stored.Add(events[index]);
        }

        if (stored.Count > 0)
        {
            await CopyAsync(connection, rows, storedAt, prefixes, cancellationToken).ConfigureAwait(false);
            using var head = new NpgsqlCommand("UPDATE audit_chain_head SET sequence = @sequence, hash = @hash WHERE id = 1", connection, transaction);
            head.Parameters.AddWithValue("sequence", sequence);
            head.Parameters.AddWithValue("hash", hash);
            await head.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var rejectedCount = 0;
        if (rejected.Count > 0)
        {
            using var reject = new NpgsqlCommand("""
                INSERT INTO audit_rejected_entries (stream_id, reason, size, sha256, received_at)
                SELECT s, r, z, h, @received_at FROM unnest(@stream_id, @reason, @size, @sha256) AS t(s, r, z, h)
                ON CONFLICT (stream_id, sha256) DO NOTHING
                """, connection, transaction);
            reject.Parameters.AddWithValue("stream_id", rejected.Select(r => r.StreamId).ToArray());
            reject.Parameters.AddWithValue("reason", rejected.Select(r => r.Reason).ToArray());
            reject.Parameters.AddWithValue("size", rejected.Select(r => r.Size).ToArray());
            reject.Parameters.AddWithValue("sha256", rejected.Select(r => r.Sha256).ToArray());
            reject.Parameters.AddWithValue("received_at", storedAt);
            rejectedCount = await reject.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new AppendResult(stored, duplicates, rejectedCount);
    }

    public async Task<long> DeleteOlderThanAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
        // The head lock keeps appends out while the prefix is cut and the anchor moves.
        await ReadHeadForUpdateAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        using var bounds = new NpgsqlCommand(
            "SELECT (SELECT MIN(sequence) FROM audit_records WHERE event_time >= @cutoff), (SELECT MAX(sequence) FROM audit_records), (SELECT MIN(sequence) FROM audit_records)",
            connection, transaction);
        bounds.Parameters.AddWithValue("cutoff", cutoff.ToUnixTimeMilliseconds() * 1_000_000L);
        long upTo, first;
        using (var reader = await bounds.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (reader.IsDBNull(1))
            {
                return 0;
            }
            upTo = reader.IsDBNull(0) ? reader.GetInt64(1) : reader.GetInt64(0) - 1;
            first = reader.GetInt64(2);
        }
        if (upTo < first)
        {
            return 0;
        }
        using var delete = new NpgsqlCommand("""
            INSERT INTO audit_anchor (id, sequence, hash, created_at)
                SELECT 1, sequence, hash, @now FROM audit_records WHERE sequence = @sequence
                ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, created_at = excluded.created_at;
            DELETE FROM audit_path_prefixes WHERE sequence <= @sequence;
            DELETE FROM audit_records WHERE sequence <= @sequence;
            """, connection, transaction);
        delete.Parameters.AddWithValue("sequence", upTo);
        delete.Parameters.AddWithValue("now", _time.GetUtcNow().ToUnixTimeMilliseconds());
        await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return upTo - first + 1;
    }

    public bool CanRead()
    {
        using var command = _dataSource.CreateCommand("SELECT COUNT(*) FROM audit_anchor");
        command.ExecuteScalar();
        return true;
    }

    public void Dispose() => _dataSource.Dispose();

    private static async Task<(long Sequence, string Hash)> ReadHeadForUpdateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        using var command = new NpgsqlCommand("SELECT sequence, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE", connection, transaction);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException("audit_chain_head has no row: the schema was changed by hand");
        }
        return (reader.GetInt64(0), reader.GetString(1));
    }

    /// <summary>The ids of <paramref name="events"/> already stored (by any writer that committed before the head lock was ours).</summary>
    private static async Task<HashSet<string>> ExistingIdsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<IncomingEvent> events,
        CancellationToken cancellationToken)
    {
        var existing = new HashSet<string>(StringComparer.Ordinal);
        if (events.Count == 0)
        {
            return existing;
        }
        using var command = new NpgsqlCommand("SELECT event_id FROM audit_records WHERE event_id = ANY(@ids)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. events.Select(e => e.Event.Id)] });
        await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            existing.Add(reader.GetString(0));
        }
        return existing;
    }

    /// <summary>The batch's records and prefix rows with binary COPY, inside the append's transaction (a conflict fails it).</summary>
    private static async Task CopyAsync(NpgsqlConnection connection, List<(long Sequence, V1.AuditEvent Event, byte[] Record, string Previous, string Hash)> rows,
        long storedAt, List<(string Prefix, long Sequence)> prefixes, CancellationToken cancellationToken)
    {
        var records = await connection.BeginBinaryImportAsync(CopyRecords, cancellationToken).ConfigureAwait(false);
        await using (records.ConfigureAwait(false))
        {
            var writer = records;
            foreach (var (sequence, auditEvent, record, previous, hash) in rows)
            {
                await writer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(sequence, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(auditEvent.Id, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(AuditStore.UnixNanos(auditEvent.Time), NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(auditEvent.Caller, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(auditEvent.Action, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync((int)auditEvent.Decision, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(storedAt, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(record, NpgsqlDbType.Bytea, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(previous, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(hash, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
            }
            await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
        // The prefix table's key is (prefix_hmac, sequence) and the sequences are new, so COPY cannot conflict here either.
        var prefixRows = await connection.BeginBinaryImportAsync("COPY audit_path_prefixes (prefix_hmac, sequence) FROM STDIN (FORMAT BINARY)",
            cancellationToken).ConfigureAwait(false);
        await using (prefixRows.ConfigureAwait(false))
        {
            var writer = prefixRows;
            foreach (var (prefix, sequence) in prefixes)
            {
                await writer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(prefix, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync(sequence, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
            }
            await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
