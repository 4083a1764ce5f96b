using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>The audit store (<c>Audit:Store</c>): SQLite (embedded default) or PostgreSQL, validated at start.</summary>
public sealed class StoreOptions : IValidatableObject
{
    public const string SectionName = "Audit:Store";

    /// <summary><c>sqlite</c> (one file, one host) or <c>postgres</c> (replicas on several hosts share one chain).</summary>
    /// <remarks>A string, not an enum, so a wrong value is a validation failure naming the key rather than a binding exception.</remarks>
    public string Provider { get; set; } = "sqlite";

    public bool UsesPostgres => string.Equals(Provider, "postgres", StringComparison.OrdinalIgnoreCase);

    /// <summary>The Npgsql connection string when <see cref="Provider"/> is postgres (put the password in a secret, e.g. the environment).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The SQLite database file, relative to the content root unless absolute. Its folder is created.</summary>
    [Required(ErrorMessage = "Audit:Store:Path is required (the SQLite file of the audit store)")]
    public string Path { get; set; } = "data/audit.db";

    /// <summary>
    /// SQLite page cache per connection, in MiB (PRAGMA cache_size). Appends update five indexes; once they outgrow the
    /// cache every append reads their pages back from the OS. Memory used grows up to this per open connection.
    /// </summary>
    [Range(2, 65_536)]
    public int SqliteCacheMiB { get; set; } = 64;

    /// <summary>Delete records older than this many days (0 keeps everything). The chain stays verifiable from an anchor.</summary>
    [Range(0, 36_500)]
    public int RetentionDays { get; set; }

    /// <summary>How often retention runs (also once at start).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromHours(1);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!UsesPostgres && !string.Equals(Provider, "sqlite", StringComparison.OrdinalIgnoreCase))
        {
            yield return new ValidationResult("Audit:Store:Provider must be sqlite or postgres", [nameof(Provider)]);
        }
        if (UsesPostgres)
        {
            if (string.IsNullOrWhiteSpace(ConnectionString))
            {
                yield return new ValidationResult("Audit:Store:ConnectionString is required when Audit:Store:Provider is postgres", [nameof(ConnectionString)]);
            }
            else if (PostgresAuditStore.ConnectionStringProblem(ConnectionString) is { } problem)
            {
                yield return new ValidationResult($"Audit:Store:ConnectionString is not a valid Npgsql connection string: {problem}", [nameof(ConnectionString)]);
            }
        }
    }
}

[OptionsValidator]
public sealed partial class StoreOptionsValidator : IValidateOptions<StoreOptions>;
