using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Maps Vault's status codes and <c>{"errors":[...]}</c> bodies to the broker's gRPC codes. Vault's own
/// error text can quote request paths, so it is only matched against known phrases, never passed on.
/// </summary>
public static partial class VaultErrors
{
    public const string CasMismatch = "check-and-set parameter did not match the current version";
    public const string CasRequired = "check-and-set parameter required for this call";

    /// <summary>The broker's message for Vault's check-and-set mismatch (the KV write path replaces it with one naming the current version).</summary>
    public const string CasMismatchMessage = "check-and-set failed: the secret's current version is not the one the write expected";

    /// <summary>
    /// Renewal answers of vault/expiration.go that mean the lease is gone for this caller (leaseEntry.renewable:
    /// "lease not found", "lease expired", "lease is expired and has failed previous revocation attempts";
    /// Renew: "cannot renew a lease across namespaces"; sys/leases/lookup: "invalid lease"). Matched at the start.
    /// </summary>
    private static readonly string[] LeaseGone =
        ["lease not found", "lease expired", "lease is expired and has failed previous revocation attempts", "cannot renew a lease across namespaces", "invalid lease"];

    /// <summary>
    /// Vault 1.17+ answers a missing, expired or revoked token with 403 and "invalid token" next to
    /// "permission denied" (hashicorp/vault#25953); Vault Agent re-authenticates on the same test.
    /// </summary>
    public static bool IsInvalidToken(byte[] body) => ReadErrors(body).Any(e => e.Contains("invalid token", StringComparison.OrdinalIgnoreCase));

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
        bool Starts(string phrase) => errors.Any(e => e.TrimStart().StartsWith(phrase, StringComparison.OrdinalIgnoreCase));
        throw (int)status switch
        {
            400 when Has(CasMismatch) => new BrokerException(BrokerErrorKind.FailedPrecondition, CasMismatchMessage),
            400 when Has(CasRequired) => new BrokerException(BrokerErrorKind.FailedPrecondition,
                "this secret requires check-and-set writes: pass the expected current version"),
            400 when Starts("lease is not renewable") => new BrokerException(BrokerErrorKind.FailedPrecondition, "the lease is not renewable"),
            400 when LeaseGone.Any(Starts) => new BrokerException(BrokerErrorKind.NotFound, "the lease does not exist or has expired"),
            400 when errors.Any(IsUnknownRole) => new BrokerException(BrokerErrorKind.NotFound, "vault has no such role"),
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

    /// <summary>
    /// A missing engine role: "unknown role: NAME" (builtin/logical/database/path_creds_create.go) or
    /// "Role \"NAME\" not found" (builtin/logical/aws/path_user.go; older releases quote with '). Other 400s
    /// that merely contain "not found" are not about the role.
    /// </summary>
    private static bool IsUnknownRole(string error) => error.StartsWith("unknown role: ", StringComparison.Ordinal) || AwsRoleNotFound().IsMatch(error);

    [GeneratedRegex("""^Role ["'].*["'] not found$""", RegexOptions.CultureInvariant)]
    private static partial Regex AwsRoleNotFound();
}
