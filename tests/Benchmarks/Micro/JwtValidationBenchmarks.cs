using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// What authenticating one call with a Kubernetes service-account token costs: a full RS256 validation
/// (JSON parsing, claims, signature check; what JwtBearer did on every call) against a hit in
/// <see cref="JwtValidationCache"/> (SHA-256 of the token and a lookup), with and without building the principal.
/// </summary>
[MemoryDiagnoser]
public class JwtValidationBenchmarks
{
    private const string Issuer = "https://kubernetes.default.svc.bench";
    private const string Audience = "secrets-broker";

    private readonly JsonWebTokenHandler _handler = new();
    private RSA _rsa = null!;
    private TokenValidationParameters _parameters = null!;
    private JwtValidationCache _cache = null!;
    private string _token = null!;

    [GlobalSetup]
    public void Setup()
    {
        _rsa = RSA.Create(2048);
        var key = new RsaSecurityKey(_rsa) { KeyId = "bench-key-1" };
        var kubernetes = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["namespace"] = "team-alpha",
            ["serviceaccount"] = new Dictionary<string, string> { ["name"] = "trainer", ["uid"] = "00000000-0000-0000-0000-000000000001" },
        });
        var now = DateTime.UtcNow;
        _token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddHours(1),
            Subject = new ClaimsIdentity([new Claim("sub", "system:serviceaccount:team-alpha:trainer")]),
            Claims = new Dictionary<string, object> { ["kubernetes.io"] = JsonDocument.Parse(kubernetes).RootElement },
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
        });
        // The broker's validation settings (AuthenticationExtensions.ConfigureJwt) with the public key only.
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudiences = [Audience],
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromSeconds(30),
            IssuerSigningKey = new RsaSecurityKey(_rsa.ExportParameters(false)) { KeyId = "bench-key-1" },
        };
        // An hour's TTL, so no measured lookup misses however long the run takes.
        _cache = new JwtValidationCache(Options.Create(new JwtAuthOptions { ValidationCacheTtl = TimeSpan.FromHours(1) }), TimeProvider.System);
        var result = _handler.ValidateTokenAsync(_token, _parameters).GetAwaiter().GetResult();
        if (!result.IsValid)
        {
            throw new InvalidOperationException("the benchmark token does not validate", result.Exception);
        }
        _cache.Add(_token, IdentityMapping.FromJwt(new ClaimsPrincipal(result.ClaimsIdentity), new Dictionary<string, string>()), now.AddHours(1));
        if (!_cache.TryGet(_token, out _))
        {
            throw new InvalidOperationException("the benchmark token is not cached");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        _rsa.Dispose();
    }

    [Benchmark(Baseline = true)]
    public async Task<bool> ValidateRs256() => (await _handler.ValidateTokenAsync(_token, _parameters).ConfigureAwait(false)).IsValid;

    [Benchmark]
    public bool CacheHit() => _cache.TryGet(_token, out _);

    [Benchmark]
    public ClaimsPrincipal? CacheHitAndPrincipal() => _cache.TryGet(_token, out var caller) ? caller.ToPrincipal("Jwt") : null;
}
