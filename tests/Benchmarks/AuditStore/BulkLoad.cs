using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Benchmarks.AuditStore;

/// <summary>
/// Fills a store (its schema already created by the store itself) with a valid chain, without the stream:
/// events are made in parallel chunks, hashed in order, and written with COPY (PostgreSQL) or the store's own
/// SqliteBatchWriter (SQLite).
/// </summary>
internal static class BulkLoad
{
    private const int Chunk = 20_000;

    private sealed record Row(AuditEvent Event, byte[] Record);

    private static IEnumerable<Row[]> Chunks(Generator generator, long count, DateTimeOffset start, TimeSpan step)
    {
        for (long offset = 0; offset < count; offset += Chunk)
        {
            var size = (int)Math.Min(Chunk, count - offset);
            var rows = new Row[size];
            Parallel.For(0, size, i =>
            {
                var auditEvent = generator.Make(offset + i, start + step * (offset + i));
                rows[i] = new Row(auditEvent, auditEvent.ToByteArray());
            });
            yield return rows;
        }
    }

    public static async Task PostgresAsync(string connectionString, Generator generator, long count, DateTimeOffset start, TimeSpan step)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var hash = "";
        long sequence = 0;
        var storedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var rows in Chunks(generator, count, start, step))
        {
            var first = sequence;
            var hashes = new (string Previous, string Hash)[rows.Length];
            for (var i = 0; i < rows.Length; i++)
            {
                var previous = hash;
                hash = RecordChecks.ChainHash(previous, rows[i].Record);
                hashes[i] = (previous, hash);
            }
            await using (var writer = await connection.BeginBinaryImportAsync(
                "COPY audit_records (sequence, event_id, event_time, caller, action, decision, stored_at, record, previous_hash, hash) FROM STDIN (FORMAT BINARY)"))
            {
                for (var i = 0; i < rows.Length; i++)
                {
                    var e = rows[i].Event;
                    await writer.StartRowAsync();
                    await writer.WriteAsync(first + i + 1, NpgsqlDbType.Bigint);
                    await writer.WriteAsync(e.Id, NpgsqlDbType.Text);
                    await writer.WriteAsync(Audit.Service.Store.AuditStore.UnixNanos(e.Time), NpgsqlDbType.Bigint);
                    await writer.WriteAsync(e.Caller, NpgsqlDbType.Text);
                    await writer.WriteAsync(e.Action, NpgsqlDbType.Text);
                    await writer.WriteAsync((int)e.Decision, NpgsqlDbType.Integer);
                    await writer.WriteAsync(storedAt, NpgsqlDbType.Bigint);
                    await writer.WriteAsync(rows[i].Record, NpgsqlDbType.Bytea);
                    await writer.WriteAsync(hashes[i].Previous, NpgsqlDbType.Text);
                    await writer.WriteAsync(hashes[i].Hash, NpgsqlDbType.Text);
                }
                await writer.CompleteAsync();
            }
            await using (var writer = await connection.BeginBinaryImportAsync("COPY audit_path_prefixes (prefix_hmac, sequence) FROM STDIN (FORMAT BINARY)"))
            {
                for (var i = 0; i < rows.Length; i++)
                {
                    foreach (var prefix in rows[i].Event.PathPrefixHmacs)
                    {
                        await writer.StartRowAsync();
                        await writer.WriteAsync(prefix, NpgsqlDbType.Text);
                        await writer.WriteAsync(first + i + 1, NpgsqlDbType.Bigint);
                    }
                }
                await writer.CompleteAsync();
            }
            sequence += rows.Length;
        }
        await using var head = new NpgsqlCommand("UPDATE audit_chain_head SET sequence = @s, hash = @h WHERE id = 1; ANALYZE;", connection);
        head.Parameters.AddWithValue("s", sequence);
        head.Parameters.AddWithValue("h", hash);
        await head.ExecuteNonQueryAsync();
    }

    public static void Sqlite(string path, Generator generator, long count, DateTimeOffset start, TimeSpan step)
    {
        using var connection = new SqliteConnection($"Data Source={path}");
        connection.Open();
        using (var pragma = connection.CreateCommand())
        {
            // A large page cache: the caller and path-prefix indexes take keys all over their range.
            pragma.CommandText = "PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576;";
            pragma.ExecuteNonQuery();
        }
        var hash = "";
        long sequence = 0;
        var storedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var rows in Chunks(generator, count, start, step))
        {
            using var transaction = connection.BeginTransaction();
            using var writer = new SqliteBatchWriter(connection);
            foreach (var row in rows)
            {
                var e = row.Event;
                var previous = hash;
                hash = RecordChecks.ChainHash(previous, row.Record);
                sequence++;
                if (!writer.InsertRecord(new(sequence, e.Id, Audit.Service.Store.AuditStore.UnixNanos(e.Time), e.Caller, e.Action, (int)e.Decision, storedAt,
                    row.Record, previous, hash)))
                {
                    throw new InvalidOperationException($"event id {e.Id} generated twice");
                }
                foreach (var prefixHmac in e.PathPrefixHmacs)
                {
                    writer.InsertPrefix(prefixHmac, sequence);
                }
            }
            transaction.Commit();
        }
        using var analyze = connection.CreateCommand();
        analyze.CommandText = "ANALYZE;";
        analyze.ExecuteNonQuery();
    }
}
