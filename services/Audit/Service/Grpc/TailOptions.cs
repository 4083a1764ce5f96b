using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary><c>AuditLog.Tail</c> (<c>Audit:Tail</c>), validated at start.</summary>
public sealed class TailOptions
{
    public const string SectionName = "Audit:Tail";

    /// <summary>
    /// A caught-up Tail wakes when this process stores a batch; it also re-reads the store this often, for records
    /// other replicas appended to a shared store.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Records read from the store at a time.</summary>
    [Range(1, 10_000)]
    public int PageSize { get; set; } = 500;
}

[OptionsValidator]
public sealed partial class TailOptionsValidator : IValidateOptions<TailOptions>;
