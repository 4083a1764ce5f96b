namespace SecretsBroker.Broker.Auth;

/// <summary>JWT bearer settings (<c>Broker:Auth:Jwt</c>), for Kubernetes service-account tokens and other OIDC issuers.</summary>
public sealed class JwtAuthOptions
{
    public const string SectionName = "Broker:Auth:Jwt";

    public bool Enabled { get; set; }

    /// <summary>The expected <c>iss</c> claim.</summary>
    public string? Issuer { get; set; }

    /// <summary>Accepted <c>aud</c> values; at least one is required.</summary>
    public List<string> Audiences { get; set; } = [];

    /// <summary>Signing keys from an OIDC discovery document (Kubernetes: https://kubernetes.default.svc/.well-known/openid-configuration).</summary>
    public string? MetadataAddress { get; set; }

    /// <summary>Signing keys from a JWKS URL, refreshed periodically.</summary>
    public string? JwksUrl { get; set; }

    /// <summary>Signing keys from a JWKS file (relative to the content root).</summary>
    public string? JwksFile { get; set; }

    /// <summary>
    /// PEM file of the CA(s) that issued the metadata/JWKS server's certificate (relative to the content root), checked
    /// instead of the machine's store; the server may present intermediates. In Kubernetes:
    /// /var/run/secrets/kubernetes.io/serviceaccount/ca.crt for https://kubernetes.default.svc.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>Whether metadata and JWKS URLs must be https. Only loopback development should turn this off.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Identity attributes taken from top-level claims: attribute name -> claim name (e.g. team -> "team").</summary>
    public Dictionary<string, string> AttributeClaims { get; set; } = [];

    /// <summary>
    /// How long a successfully validated token is accepted again without re-validating it (never beyond its
    /// <c>exp</c>); <see cref="TimeSpan.Zero"/> validates every call. A token whose signing key is removed from
    /// the JWKS stays accepted for at most this long. At most one hour.
    /// </summary>
    public TimeSpan ValidationCacheTtl { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most validated tokens remembered at once (1 to 1,000,000).</summary>
    public int ValidationCacheSize { get; set; } = 10_000;
}

/// <summary>Client-certificate settings (<c>Broker:Auth:Mtls</c>).</summary>
public sealed class MtlsAuthOptions
{
    public const string SectionName = "Broker:Auth:Mtls";

    public bool Enabled { get; set; }

    /// <summary>PEM files of the CAs that issue client certificates (relative to the content root).</summary>
    public List<string> CaFiles { get; set; } = [];

    /// <summary>Whether to check revocation online; off by default, since CRL endpoints are often unreachable from clusters.</summary>
    public bool CheckRevocation { get; set; }
}
