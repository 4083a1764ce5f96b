using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A token issuer for tests: an RSA signing key, a JWKS served over HTTP on 127.0.0.1 (as a cluster's
/// OIDC endpoint would), and Kubernetes-shaped service-account tokens.
/// </summary>
public sealed class TestJwtIssuer : IAsyncDisposable
{
    public const string Issuer = "https://kubernetes.default.svc.test";
    public const string Audience = "secrets-broker";

    private readonly List<RSA> _retiredKeys = [];
    private readonly WebApplication _jwksServer;
    // Key and key id change together (the JWKS is served from another thread).
    private volatile CurrentKey _current = new(RSA.Create(2048), "test-key-1");

    private TestJwtIssuer(WebApplication jwksServer, string jwksUrl)
    {
        _jwksServer = jwksServer;
        JwksUrl = jwksUrl;
    }

    public string JwksUrl { get; }

    public RsaSecurityKey SigningKey
    {
        get
        {
            var current = _current;
            return new RsaSecurityKey(current.Key) { KeyId = current.Id };
        }
    }

    /// <summary>
    /// Replaces the signing key with a new one (the next key id): the JWKS then serves only the new key, as
    /// an issuer does once the old key is retired. Tokens issued before no longer verify once a relying party
    /// has fetched the JWKS again.
    /// </summary>
    public void RotateKey()
    {
        var retired = _current;
        _retiredKeys.Add(retired.Key);
        _current = new CurrentKey(RSA.Create(2048), $"test-key-{_retiredKeys.Count + 1}");
    }

    public static async Task<TestJwtIssuer> StartAsync()
    {
        // An empty content root: the test output folder holds the broker's appsettings.json (HTTP/2 only).
        var contentRoot = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "secretsbroker-tests", "jwks-empty-root")).FullName;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = contentRoot });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        TestJwtIssuer? issuer = null;
        app.MapGet("/openid/v1/jwks", () => Results.Text(issuer!.JwksJson(), "application/json"));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        issuer = new TestJwtIssuer(app, address + "/openid/v1/jwks");
        return issuer;
    }

    /// <summary>
    /// A Kubernetes projected service-account token for namespace/service account. <paramref name="omitSubject"/>
    /// leaves out <c>sub</c>; <paramref name="subject"/> replaces its usual value.
    /// </summary>
    public string IssueServiceAccountToken(string ns, string serviceAccount, string issuer = Issuer, string audience = Audience,
        DateTime? expires = null, SecurityKey? signingKey = null, bool omitSubject = false, string? subject = null)
    {
        var kubernetes = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["namespace"] = ns,
            ["serviceaccount"] = new Dictionary<string, string> { ["name"] = serviceAccount, ["uid"] = Guid.NewGuid().ToString() },
        });
        var now = DateTime.UtcNow;
        var expiry = expires ?? now.AddMinutes(10);
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = expiry < now ? expiry.AddMinutes(-10) : now,
            NotBefore = expiry < now ? expiry.AddMinutes(-10) : now,
            Expires = expiry,
            Subject = omitSubject ? null : new ClaimsIdentity([new Claim("sub", subject ?? $"system:serviceaccount:{ns}:{serviceAccount}")]),
            Claims = new Dictionary<string, object> { ["kubernetes.io"] = JsonDocument.Parse(kubernetes).RootElement },
            SigningCredentials = new SigningCredentials(signingKey ?? SigningKey, SecurityAlgorithms.RsaSha256),
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }

    public async ValueTask DisposeAsync()
    {
        await _jwksServer.StopAsync();
        await _jwksServer.DisposeAsync();
        _current.Key.Dispose();
        foreach (var key in _retiredKeys)
        {
            key.Dispose();
        }
    }

    private string JwksJson()
    {
        var current = _current;
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(current.Key.ExportParameters(false)) { KeyId = current.Id });
        return JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, use = "sig", alg = "RS256", n = jwk.N, e = jwk.E } },
        });
    }

    private sealed record CurrentKey(RSA Key, string Id);
}
