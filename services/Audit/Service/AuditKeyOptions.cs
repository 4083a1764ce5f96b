using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;

namespace SecretsBroker.Audit.Service;

/// <summary>The deployment's audit key (<c>Audit:Key</c>, base64 of 32 bytes), the same one the brokers use, and the event keys.</summary>
public sealed class AuditKeyOptions
{
    public const string SectionName = "Audit";

    public string Key { get; set; } = "";

    /// <summary>
    /// Dedicated keys events may be authenticated with (<c>Audit:EventKeys:&lt;id&gt;</c> = base64 of 32 bytes), as brokers
    /// set them with <c>Broker:Audit:EventKeyId</c>/<c>EventKey</c>; several during a rotation. The key derived from
    /// <see cref="Key"/> (id <c>audit-key</c>) is always accepted too.
    /// </summary>
    public Dictionary<string, string> EventKeys { get; set; } = [];

    /// <summary>Every key an event's MAC is checked against, by id.</summary>
    public AuditEventAuthenticator CreateAuthenticator() =>
        new([AuditEventMacKey.FromAuditKey(Key), .. EventKeys.Select(k => AuditEventMacKey.FromBase64(k.Key, k.Value))]);
}

public sealed class AuditKeyOptionsValidator : IValidateOptions<AuditKeyOptions>
{
    public ValidateOptionsResult Validate(string? name, AuditKeyOptions options)
    {
        if (AuditKey.Problem(options.Key) is { } problem)
        {
            return ValidateOptionsResult.Fail($"Audit:Key: {problem}");
        }
        var failures = new List<string>();
        foreach (var (id, key) in options.EventKeys)
        {
            if (id == AuditEventMacKey.DerivedKeyId)
            {
                failures.Add($"Audit:EventKeys:{id}: the id {id} is the key derived from Audit:Key; give a dedicated key another id");
                continue;
            }
            try
            {
                using var _ = AuditEventMacKey.FromBase64(id, key);
            }
            catch (ArgumentException e)
            {
                // The message never contains the key itself.
                failures.Add($"Audit:EventKeys:{id}: {e.Message}");
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
