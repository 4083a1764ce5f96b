using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>
/// Vault behind TLS signed by a private CA: trusted through CaCertificateFile, refused without it, and
/// trusted when Vault presents leaf + intermediate while the CA file holds only the root (as curl, hvac
/// and Vault's Go client accept).
/// </summary>
[Trait("Category", "Integration")]
public sealed class VaultTlsTests
{
    private const string Seed = """
        { "kv": { "secret": { "app/db": { "password": "FAKE-tls-password" } } },
          "tokens": [ { "id": "FAKE-tls-token", "policies": ["root"] } ] }
        """;

    [Fact]
    public async Task A_vault_certificate_signed_by_the_configured_ca_is_trusted_and_one_without_it_is_refused()
    {
        using var directory = new TestDirectory();
        var (caFile, certFile, keyFile) = CreateCertificates(directory);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, tls: (certFile, keyFile));
        var auth = new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-tls-token",
        };
        var trusting = VaultFixture.BrokerConfiguration(vault.Address, auth);
        trusting["Broker:Vault:Connections:default:CaCertificateFile"] = caFile;
        var untrusting = VaultFixture.BrokerConfiguration(vault.Address, auth);
        untrusting["Broker:Vault:Connections:default:MaxRetries"] = "0";

        await using var trusted = await BrokerHost.StartAsync(trusting);
        await using var untrusted = await BrokerHost.StartAsync(untrusting);
        var secret = await trusted.CreateClient().GetSecretAsync("vault/app/db");
        var error = await Assert.ThrowsAsync<RpcException>(() => untrusted.CreateClient().GetSecretAsync("vault/app/db"));

        Assert.Equal("https", vault.Address.Scheme);
        Assert.Equal("FAKE-tls-password", secret.Data["password"]);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("vault is unreachable", error.Status.Detail);
    }

    [Fact]
    public async Task A_vault_certificate_issued_by_an_intermediate_is_trusted_with_only_the_root_in_the_ca_file()
    {
        using var directory = new TestDirectory();
        var (rootFile, chainFile, keyFile) = CreateChain(directory);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, tls: (chainFile, keyFile));
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-tls-token",
            ["Broker:Vault:Connections:default:CaCertificateFile"] = rootFile,
            ["Broker:Vault:Connections:default:MaxRetries"] = "0",
        });
        await using var host = await BrokerHost.StartAsync(configuration);

        var secret = await host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-tls-password", secret.Data["password"]);
    }

    [Fact]
    public async Task A_chain_that_does_not_lead_to_the_configured_root_is_refused()
    {
        using var directory = new TestDirectory();
        var (_, chainFile, keyFile) = CreateChain(directory);
        using var other = new TestDirectory();
        var (otherRoot, _, _) = CreateCertificates(other);
        await using var vault = await VaultEmulatorHost.StartAsync(Seed, tls: (chainFile, keyFile));
        var configuration = VaultFixture.BrokerConfiguration(vault.Address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = "FAKE-tls-token",
            ["Broker:Vault:Connections:default:CaCertificateFile"] = otherRoot,
            ["Broker:Vault:Connections:default:MaxRetries"] = "0",
        });
        await using var host = await BrokerHost.StartAsync(configuration);

        var error = await Assert.ThrowsAsync<RpcException>(() => host.CreateClient().GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("vault is unreachable", error.Status.Detail);
    }

    /// <summary>root -> intermediate -> leaf; the server file holds leaf then intermediate (Vault's tls_cert_file layout).</summary>
    private static (string Root, string Chain, string Key) CreateChain(TestDirectory directory)
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("CN=FAKE test vault root CA", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
        using var root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));

        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var intermediateRequest = new CertificateRequest("CN=FAKE test vault intermediate CA", intermediateKey, HashAlgorithmName.SHA256);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, true, false));
        using var intermediateCertificate = intermediateRequest.Create(root, DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddDays(1), [5, 6, 7, 8]);
        using var intermediate = intermediateCertificate.CopyWithPrivateKey(intermediateKey);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=127.0.0.1", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        leafRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(intermediate, true, false));
        using var leaf = leafRequest.Create(intermediate, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(12), [1, 2, 3, 4]);

        return (
            directory.WriteFile("root.pem", root.ExportCertificatePem()),
            directory.WriteFile("vault-chain.pem", leaf.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem()),
            directory.WriteFile("vault-chain-key.pem", leafKey.ExportPkcs8PrivateKeyPem()));
    }

    private static (string Ca, string Cert, string Key) CreateCertificates(TestDirectory directory)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=FAKE test vault CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=127.0.0.1", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var leaf = leafRequest.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(12), [1, 2, 3, 4]);

        return (
            directory.WriteFile("ca.pem", ca.ExportCertificatePem()),
            directory.WriteFile("vault.pem", leaf.ExportCertificatePem()),
            directory.WriteFile("vault-key.pem", leafKey.ExportPkcs8PrivateKeyPem()));
    }
}
