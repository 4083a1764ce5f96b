using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// JWT authentication whose keys come over TLS from a server with a private CA (as a cluster's API server
/// with its own CA): Kestrel presents leaf + intermediate, <c>Broker:Auth:Jwt:CaCertificateFile</c> holds only
/// the root. Both ways of finding keys are covered: a JWKS URL and OIDC discovery (MetadataAddress).
/// </summary>
[Trait("Category", "Integration")]
public sealed class JwksTlsTests : IAsyncLifetime
{
    private const string Issuer = "https://oidc.private-ca.test";
    private const string Audience = "secrets-broker";

    private readonly TestCertificateChain _pki = new();
    private readonly RSA _signingKey = RSA.Create(2048);
    private TlsTestServer? _server;

    public async Task InitializeAsync()
    {
        _server = await TlsTestServer.StartAsync(_pki, app =>
        {
            app.MapGet("/.well-known/openid-configuration", () => Results.Text(
                JsonSerializer.Serialize(new Dictionary<string, string> { ["issuer"] = Issuer, ["jwks_uri"] = new Uri(_server!.Address, "openid/v1/jwks").ToString() }),
                "application/json"));
            app.MapGet("/openid/v1/jwks", () => Results.Text(Jwks(), "application/json"));
        });
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _signingKey.Dispose();
        _pki.Dispose();
    }

    [Theory]
    [InlineData("JwksUrl", "openid/v1/jwks")]
    [InlineData("MetadataAddress", ".well-known/openid-configuration")]
    public async Task Keys_fetched_from_a_server_presenting_its_intermediate_validate_tokens_with_only_the_root_in_the_CA_file(string setting, string path)
    {
        using var directory = Directory();
        var configuration = Configuration(setting, path);
        configuration["Broker:Auth:Jwt:CaCertificateFile"] = directory.WriteFile("root.pem", _pki.RootPem);
        await using var broker = await BrokerHost.StartAsync(configuration, directory);

        var secret = await broker.CreateClient(token: Token()).GetSecretAsync("kv/demo/db");

        Assert.Equal("FAKE-jwt-over-tls", secret.Data["password"]);
    }

    [Theory]
    [InlineData("JwksUrl", "openid/v1/jwks")]
    [InlineData("MetadataAddress", ".well-known/openid-configuration")]
    public async Task Without_the_CA_file_the_keys_cannot_be_fetched_and_the_caller_is_UNAUTHENTICATED(string setting, string path)
    {
        using var directory = Directory();
        await using var broker = await BrokerHost.StartAsync(Configuration(setting, path), directory);

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient(token: Token()).GetSecretAsync("kv/demo/db"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task A_CA_file_without_a_root_stops_the_broker_at_start()
    {
        using var directory = Directory();
        var configuration = Configuration("JwksUrl", "openid/v1/jwks");
        configuration["Broker:Auth:Jwt:CaCertificateFile"] = directory.WriteFile("intermediate.pem", _pki.Intermediate.ExportCertificatePem());

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => BrokerHost.StartAsync(configuration, directory));

        Assert.Contains("Broker:Auth:Jwt:CaCertificateFile must be a readable PEM file holding the root CA", error.Message, StringComparison.Ordinal);
    }

    private static TestDirectory Directory()
    {
        var directory = new TestDirectory();
        directory.WriteFile("local.yaml", "secrets:\n  demo/db: { data: { password: FAKE-jwt-over-tls } }\n");
        directory.WriteFile("policy.yaml", """
            policies:
              - name: jwt-readers
                appliesTo: { authMethods: [jwt] }
                rules:
                  - paths: ["kv/**"]
                    capabilities: [read]
            """);
        return directory;
    }

    private Dictionary<string, string?> Configuration(string setting, string path) => new()
    {
        ["Broker:Mounts:0:Prefix"] = "kv",
        ["Broker:Mounts:0:Type"] = "local",
        ["Broker:Mounts:0:File"] = "local.yaml",
        ["Broker:Policy:File"] = "policy.yaml",
        ["Broker:Auth:Jwt:Enabled"] = "true",
        ["Broker:Auth:Jwt:Issuer"] = Issuer,
        ["Broker:Auth:Jwt:Audiences:0"] = Audience,
        [$"Broker:Auth:Jwt:{setting}"] = new Uri(_server!.Address, path).ToString(),
    };

    private string Token() => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = Issuer,
        Audience = Audience,
        Expires = DateTime.UtcNow.AddMinutes(10),
        Subject = new ClaimsIdentity([new Claim("sub", "system:serviceaccount:team-alpha:trainer")]),
        SigningCredentials = new SigningCredentials(new RsaSecurityKey(_signingKey) { KeyId = "private-ca-key" }, SecurityAlgorithms.RsaSha256),
    });

    private string Jwks()
    {
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(_signingKey.ExportParameters(false)) { KeyId = "private-ca-key" });
        return JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, use = "sig", alg = "RS256", n = jwk.N, e = jwk.E } } });
    }
}
