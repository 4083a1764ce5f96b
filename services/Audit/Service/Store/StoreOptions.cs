using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>The embedded SQLite store (<c>Audit:Store</c>), validated at start.</summary>
public sealed class StoreOptions
{
    public const string SectionName = "Audit:Store";

    /// <summary>The SQLite database file, relative to the content root unless absolute. Its folder is created.</summary>
    [Required(ErrorMessage = "Audit:Store:Path is required (the SQLite file of the audit store)")]
    public string Path { get; set; } = "data/audit.db";

    /// <summary>Delete records older than this many days (0 keeps everything). The chain stays verifiable from an anchor.</summary>
    [Range(0, 36_500)]
    public int RetentionDays { get; set; }

    /// <summary>How often retention runs (also once at start).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromHours(1);
}

[OptionsValidator]
public sealed partial class StoreOptionsValidator : IValidateOptions<StoreOptions>;
