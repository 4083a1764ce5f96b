using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

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

    /// <summary>
    /// PEM file of the CA(s) that issued Redis's TLS certificate (relative to the content root), checked instead of
    /// the machine's store; Redis may present intermediates. Needs <c>ssl=true</c> in <see cref="Configuration"/>.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Configuration);
}

[OptionsValidator]
public sealed partial class RedisOptionsValidator : IValidateOptions<RedisOptions>;

/// <summary>Checks at start that the configuration string parses and that a CA file is readable and goes with ssl=true.</summary>
public sealed class RedisTlsOptionsValidator(IHostEnvironment environment) : IValidateOptions<RedisOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.CaCertificateFile))
        {
            return ValidateOptionsResult.Success;
        }
        if (!options.IsConfigured)
        {
            return ValidateOptionsResult.Fail($"{RedisOptions.SectionName}:CaCertificateFile is set but {RedisOptions.SectionName}:Configuration is empty");
        }
        try
        {
            if (!ConfigurationOptions.Parse(options.Configuration!).Ssl)
            {
                return ValidateOptionsResult.Fail($"{RedisOptions.SectionName}:CaCertificateFile needs ssl=true in {RedisOptions.SectionName}:Configuration");
            }
        }
        catch (ArgumentException)
        {
            // The message can quote the string (a password): only say where.
            return ValidateOptionsResult.Fail($"{RedisOptions.SectionName}:Configuration is not a valid StackExchange.Redis configuration string");
        }
        try
        {
            RedisConnection.LoadCaValidator(options, environment);
        }
        catch (InvalidOperationException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }
        return ValidateOptionsResult.Success;
    }
}
