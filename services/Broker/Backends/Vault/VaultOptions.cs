using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// <c>Broker:Vault</c>: the Vault servers the broker talks to, by connection name. Mounts of type
/// <c>vault-kv</c> and <c>vault-dynamic</c> pick one with their <c>Connection</c> setting
/// (default "default"). See docs/vault.md.
/// </summary>
public sealed class VaultOptions
{
    public const string SectionName = "Broker:Vault";

    public Dictionary<string, VaultConnectionOptions> Connections { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One Vault server (or namespace of one) and how the broker authenticates to it.</summary>
public sealed class VaultConnectionOptions
{
    /// <summary>Base address, for example https://vault.internal:8200.</summary>
    public Uri? Address { get; set; }

    /// <summary>Vault Enterprise namespace sent as X-Vault-Namespace on every call (logins included).</summary>
    public string? Namespace { get; set; }

    /// <summary>PEM file with the CA certificate(s) Vault's TLS certificate chains up to (the root is enough; the server's intermediates are used), when it is not publicly trusted.</summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>Timeout of one HTTP attempt.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Timeout of one call including its retries.</summary>
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries after a 429 or 503, a failure to connect, or (for reads only, never for credential requests) other 5xx and transport failures.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>First retry delay; later ones grow exponentially, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Share of failed calls (5xx or transport) in <see cref="CircuitSamplingDuration"/> that opens the circuit.</summary>
    public double CircuitFailureRatio { get; set; } = 0.5;

    public int CircuitMinimumThroughput { get; set; } = 20;

    public TimeSpan CircuitSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan CircuitBreakDuration { get; set; } = TimeSpan.FromSeconds(5);

    public VaultAuthOptions Auth { get; set; } = new();
}

/// <summary>How the broker logs in to Vault.</summary>
public sealed class VaultAuthOptions
{
    /// <summary>token | approle | kubernetes | jwt.</summary>
    public string Method { get; set; } = "token";

    /// <summary>Path the auth method is mounted at in Vault; defaults to the method's name.</summary>
    public string? MountPath { get; set; }

    /// <summary>token: the token itself (prefer <see cref="TokenFile"/>).</summary>
    public string? Token { get; set; }

    /// <summary>token: a file holding the token.</summary>
    public string? TokenFile { get; set; }

    /// <summary>approle: role_id.</summary>
    public string? RoleId { get; set; }

    /// <summary>approle: secret_id (prefer <see cref="SecretIdFile"/>).</summary>
    public string? SecretId { get; set; }

    public string? SecretIdFile { get; set; }

    /// <summary>kubernetes and jwt: the Vault role to log in as.</summary>
    public string? Role { get; set; }

    /// <summary>kubernetes and jwt: file holding the JWT, re-read at every login (Kubernetes rotates it).</summary>
    public string? JwtFile { get; set; }

    /// <summary>jwt: the JWT itself, when it does not come from a file.</summary>
    public string? Jwt { get; set; }

    /// <summary>Share of a token's TTL after which the broker renews it (renew-self) or logs in again.</summary>
    public double RenewAtFraction { get; set; } = 2.0 / 3.0;

    public string EffectiveMountPath => string.IsNullOrWhiteSpace(MountPath) ? Method : MountPath.Trim('/');
}

/// <summary>Checks every connection at start, so a bad one stops the broker with a clear message.</summary>
public sealed class VaultOptionsValidator : IValidateOptions<VaultOptions>
{
    public static readonly string[] Methods = ["token", "approle", "kubernetes", "jwt"];

    public ValidateOptionsResult Validate(string? name, VaultOptions options)
    {
        var failures = new List<string>();
        foreach (var (connection, c) in options.Connections)
        {
            var where = $"{VaultOptions.SectionName}:Connections:{connection}";
            if (c.Address is null || !c.Address.IsAbsoluteUri || c.Address.Scheme is not ("http" or "https"))
            {
                failures.Add($"{where}:Address must be an absolute http or https address");
            }
            if (c.CaCertificateFile is { Length: > 0 } ca && !File.Exists(ca))
            {
                failures.Add($"{where}:CaCertificateFile does not exist");
            }
            if (c.RequestTimeout <= TimeSpan.Zero || c.TotalTimeout < c.RequestTimeout)
            {
                failures.Add($"{where}: RequestTimeout must be positive and TotalTimeout at least RequestTimeout");
            }
            if (c.MaxRetries is < 0 or > 10)
            {
                failures.Add($"{where}:MaxRetries must be between 0 and 10");
            }
            if (c.RetryBaseDelay <= TimeSpan.Zero || c.RetryMaxDelay < c.RetryBaseDelay)
            {
                failures.Add($"{where}: RetryBaseDelay must be positive and RetryMaxDelay at least RetryBaseDelay");
            }
            if (c.CircuitFailureRatio is <= 0 or > 1 || c.CircuitMinimumThroughput < 2 || c.CircuitBreakDuration < TimeSpan.FromMilliseconds(500)
                || c.CircuitSamplingDuration < TimeSpan.FromMilliseconds(500))
            {
                failures.Add($"{where}: circuit breaker settings are out of range (ratio in (0,1], throughput >= 2, durations >= 0.5s)");
            }
            var auth = c.Auth;
            if (!Methods.Contains(auth.Method))
            {
                failures.Add($"{where}:Auth:Method must be one of {string.Join(", ", Methods)}");
                continue;
            }
            if (auth.RenewAtFraction is <= 0.1 or >= 0.95)
            {
                failures.Add($"{where}:Auth:RenewAtFraction must be between 0.1 and 0.95");
            }
            switch (auth.Method)
            {
                case "token" when string.IsNullOrEmpty(auth.Token) == string.IsNullOrEmpty(auth.TokenFile):
                    failures.Add($"{where}:Auth: set exactly one of Token and TokenFile");
                    break;
                case "approle" when string.IsNullOrEmpty(auth.RoleId):
                    failures.Add($"{where}:Auth:RoleId is required for approle");
                    break;
                case "approle" when string.IsNullOrEmpty(auth.SecretId) == string.IsNullOrEmpty(auth.SecretIdFile):
                    failures.Add($"{where}:Auth: set exactly one of SecretId and SecretIdFile for approle");
                    break;
                case "kubernetes" or "jwt" when string.IsNullOrEmpty(auth.Role):
                    failures.Add($"{where}:Auth:Role is required for {auth.Method}");
                    break;
                case "kubernetes" when string.IsNullOrEmpty(auth.JwtFile):
                    failures.Add($"{where}:Auth:JwtFile is required for kubernetes (the service account token file)");
                    break;
                case "jwt" when string.IsNullOrEmpty(auth.Jwt) == string.IsNullOrEmpty(auth.JwtFile):
                    failures.Add($"{where}:Auth: set exactly one of Jwt and JwtFile for jwt");
                    break;
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
