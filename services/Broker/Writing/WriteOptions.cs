using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Writing;

/// <summary>Limits of PutSecret (<c>Broker:Writes</c>).</summary>
public sealed class WriteOptions
{
    public const string SectionName = "Broker:Writes";

    /// <summary>
    /// Largest value a write may carry: the bytes of <c>binary_data</c>, or the fields' names and values in UTF-8. The
    /// default is AWS Secrets Manager's limit (SecretString and SecretBinary, 65536), which also fits Vault's default
    /// request size.
    /// </summary>
    [Range(1, 1024 * 1024)]
    public int MaxValueBytes { get; set; } = 65536;

    /// <summary>Most fields one version may have.</summary>
    [Range(1, 10_000)]
    public int MaxFields { get; set; } = 256;

    /// <summary>Longest field name, in characters.</summary>
    [Range(1, 4096)]
    public int MaxFieldNameLength { get; set; } = 256;
}

[OptionsValidator]
public sealed partial class WriteOptionsValidator : IValidateOptions<WriteOptions>;
