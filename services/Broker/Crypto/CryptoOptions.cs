using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Crypto;

/// <summary>Limits of the Crypto service, bound from <c>Broker:Crypto</c> and validated at start.</summary>
public sealed class CryptoOptions
{
    public const string SectionName = "Broker:Crypto";

    /// <summary>
    /// Most plaintext bytes one Encrypt call takes (default 64 KiB); larger inputs are RESOURCE_EXHAUSTED. Large data is
    /// encrypted locally under a data key (GenerateDataKey). Must stay below Broker:MaxRequestBytes to be reachable.
    /// </summary>
    [Range(1, 16 * 1024 * 1024)]
    public int MaxPlaintextBytes { get; set; } = 64 * 1024;
}

[OptionsValidator]
public sealed partial class CryptoOptionsValidator : IValidateOptions<CryptoOptions>;
