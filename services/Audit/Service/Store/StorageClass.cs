using Microsoft.Data.Sqlite;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// SQLite keeps a storage class per value, not per column: someone with the file can store TEXT in the
/// BLOB column (<c>CAST(record AS TEXT)</c>) or a BLOB in a TEXT column. Readers check the class before
/// using a value, so such a row is a broken record rather than a cast exception (gRPC UNKNOWN), and a
/// BLOB hash is not silently read back as text. Microsoft.Data.Sqlite's GetValue returns the CLR type of
/// the value's storage class (sqlite3_column_type): long, double, string, byte[] or DBNull.
/// </summary>
internal static class StorageClass
{
    public const string Integer = "INTEGER";
    public const string Text = "TEXT";
    public const string Blob = "BLOB";

    public static string Of(object value) => value switch
    {
        long => Integer,
        double => "REAL",
        string => Text,
        byte[] => Blob,
        DBNull => "NULL",
        _ => value.GetType().Name,
    };

    /// <summary>"column X is A, not B" for the first column whose value is not of its expected class, else null.</summary>
    public static string? Mismatch(SqliteDataReader reader, params ReadOnlySpan<(int Ordinal, string Expected)> columns)
    {
        foreach (var (ordinal, expected) in columns)
        {
            var actual = Of(reader.GetValue(ordinal));
            if (actual != expected)
            {
                return $"column {reader.GetName(ordinal)} is {actual}, not {expected}";
            }
        }
        return null;
    }
}
