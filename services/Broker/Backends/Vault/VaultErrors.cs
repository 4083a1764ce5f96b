using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Maps Vault's status codes and <c>{"errors":[...]}</c> bodies to the broker's gRPC codes. Vault's own
/// error text can quote request paths, so it is only matched against known phrases, never passed on.
/// </summary>
public static class VaultErrors
{
    public const string CasMismatch = "check-and-set parameter did not match the current version";
    public const string CasRequired = "check-and-set parameter required for this call";

    public static string[] ReadErrors(byte[] body)
    {
        if (body.Length == 0)
        {
            return [];
        }
        try
        {
            return JsonSerializer.Deserialize(body, VaultJsonContext.Default.VaultErrorBody)?.Errors ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    [DoesNotReturn]
    public static void Throw(HttpStatusCode status, byte[] body)
    {
        var errors = ReadErrors(body);
        bool Has(string phrase) => errors.Any(e => e.Contains(phrase, StringComparison.OrdinalIgnoreCase));
        throw (int)status switch
        {
            400 when Has(CasMismatch) => new BrokerException(BrokerErrorKind.FailedPrecondition,
                "check-and-set failed: the secret's current version is not the one the write expected"),
            400 when Has(CasRequired) => new BrokerException(BrokerErrorKind.FailedPrecondition,
                "this secret requires check-and-set writes: pass the expected current version"),
            400 when Has("lease is not renewable") => new BrokerException(BrokerErrorKind.FailedPrecondition, "the lease is not renewable"),
            400 when Has("lease not found") || Has("invalid lease") => new BrokerException(BrokerErrorKind.NotFound, "the lease does not exist or has expired"),
            400 when Has("unknown role") || Has("not found") => new BrokerException(BrokerErrorKind.NotFound, "vault has no such role"),
            400 => new BrokerException(BrokerErrorKind.InvalidArgument, "vault rejected the request as invalid"),
            401 or 403 => new BrokerException(BrokerErrorKind.PermissionDenied, "vault denied the broker access to this secret"),
            404 => new BrokerException(BrokerErrorKind.NotFound, "secret not found"),
            405 => new BrokerException(BrokerErrorKind.FailedPrecondition, "vault does not support this operation here"),
            429 => new BrokerException(BrokerErrorKind.ResourceExhausted, "vault is rate limiting requests; retry later"),
            503 when Has("sealed") => new BrokerException(BrokerErrorKind.Unavailable, "vault is sealed"),
            503 => new BrokerException(BrokerErrorKind.Unavailable, "vault is unavailable (standby or maintenance)"),
            412 or 500 or 502 or 504 => new BrokerException(BrokerErrorKind.Unavailable, $"vault failed to answer (HTTP {(int)status})"),
            _ => new BrokerException(BrokerErrorKind.Unavailable, $"vault answered with unexpected HTTP {(int)status}"),
        };
    }
}
