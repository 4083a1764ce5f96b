using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Redis;

/// <summary>
/// The broker's one Redis (<c>Broker:Redis</c>): shared cache (L2) and backplane, and the audit stream.
/// Without it the broker caches in process only and keeps audit events in its local spool.
/// </summary>
public sealed class RedisOptions
{
    public const string SectionName = "Broker:Redis";

    /// <summary>StackExchange.Redis configuration string, for example <c>redis:6379,password=...,ssl=true</c>; empty for none.</summary>
    public string? Configuration { get; set; }

    /// <summary>How long one Redis operation may take; past it the broker goes on without Redis (cache) or spools (audit).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Configuration);
}

[OptionsValidator]
public sealed partial class RedisOptionsValidator : IValidateOptions<RedisOptions>;
