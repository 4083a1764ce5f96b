using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Core;

/// <summary>Request limits of the read API, bound from the <c>Broker</c> section and validated at start.</summary>
public sealed class BrokerOptions
{
    public const string SectionName = "Broker";

    /// <summary>Most paths one BatchGetSecrets call may ask for.</summary>
    [Range(1, 1000)]
    public int MaxBatchSize { get; set; } = 100;

    /// <summary>How many reads of one batch run at once against a backend without a native batch read.</summary>
    [Range(1, 64)]
    public int BatchConcurrency { get; set; } = 8;

    /// <summary>Page size used when ListSecrets asks for 0.</summary>
    [Range(1, 1000)]
    public int DefaultListPageSize { get; set; } = 100;

    /// <summary>Largest page size ListSecrets accepts.</summary>
    [Range(1, 1000)]
    public int MaxListPageSize { get; set; } = 1000;

    /// <summary>
    /// Most backend list calls one ListSecrets call makes to fill its page with entries the caller may see (each asks
    /// for max(page_size + 1, 100) names): the bound on the work one call does (README, "Listing").
    /// </summary>
    [Range(1, 100)]
    public int MaxListBackendCalls { get; set; } = 10;

    /// <summary>How long a ListSecrets next_page_token stays valid after it was issued.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan ListPageTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Largest gRPC request message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxRequestBytes { get; set; } = 1024 * 1024;
}

[OptionsValidator]
public sealed partial class BrokerOptionsValidator : IValidateOptions<BrokerOptions>;
