using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// An enterprise-shaped private PKI made in memory: root CA -> intermediate CA -> server leaf for
/// 127.0.0.1 and localhost. Servers present leaf + intermediate (<see cref="WriteServerFiles"/>) while
/// the CA file given to the client holds only the root (<see cref="RootPem"/>), as real deployments do.
/// </summary>
public sealed class TestCertificateChain : IDisposable
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    public TestCertificateChain(string name = "SecretsBroker Test")
    {
        using var rootKey = RSA.Create(2048);
        var rootRequest = new CertificateRequest($"CN={name} Root CA", rootKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
        Root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(60));

        var intermediateKey = RSA.Create(2048);
        var intermediateRequest = new CertificateRequest($"CN={name} Issuing CA", intermediateKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, true, false));
        using var intermediatePublic = intermediateRequest.Create(Root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), Serial());
        Intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        using var leafKey = RSA.Create(2048);
        var leafRequest = new CertificateRequest("CN=127.0.0.1", leafKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        leafRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuthentication], false));
        leafRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Intermediate, true, false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        leafRequest.CertificateExtensions.Add(san.Build());
        using var leafPublic = leafRequest.Create(Intermediate, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(7), Serial());
        // Round-trip through PKCS#12 so the key is usable by SslStream on every platform.
        Leaf = X509CertificateLoader.LoadPkcs12(leafPublic.CopyWithPrivateKey(leafKey).Export(X509ContentType.Pkcs12), null);
        LeafKeyPem = leafKey.ExportPkcs8PrivateKeyPem();
    }

    public X509Certificate2 Root { get; }

    public X509Certificate2 Intermediate { get; }

    /// <summary>The server certificate, with its private key.</summary>
    public X509Certificate2 Leaf { get; }

    public string LeafKeyPem { get; }

    /// <summary>What a client's CA file holds: the root only.</summary>
    public string RootPem => Root.ExportCertificatePem();

    /// <summary>What a server's certificate file holds: leaf, then intermediate.</summary>
    public string ChainPem => Leaf.ExportCertificatePem() + "\n" + Intermediate.ExportCertificatePem() + "\n";

    /// <summary>Writes root.pem (the client's CA file), chain.pem (leaf + intermediate), leaf.pem (leaf alone) and key.pem into <paramref name="directory"/>.</summary>
    public (string RootFile, string ChainFile, string LeafOnlyFile, string KeyFile) WriteServerFiles(string directory)
    {
        var root = Path.Combine(directory, "root.pem");
        var chain = Path.Combine(directory, "chain.pem");
        var leafOnly = Path.Combine(directory, "leaf.pem");
        var key = Path.Combine(directory, "key.pem");
        File.WriteAllText(root, RootPem, Encoding.ASCII);
        File.WriteAllText(chain, ChainPem, Encoding.ASCII);
        File.WriteAllText(leafOnly, Leaf.ExportCertificatePem() + "\n", Encoding.ASCII);
        File.WriteAllText(key, LeafKeyPem, Encoding.ASCII);
        return (root, chain, leafOnly, key);
    }

    /// <summary>What a TLS server built on SslStream/Kestrel presents: the leaf plus the intermediate (or the leaf alone).</summary>
    public SslStreamCertificateContext ServerContext(bool includeIntermediate = true) =>
        SslStreamCertificateContext.Create(Leaf, includeIntermediate ? [Intermediate] : [], offline: true);

    public void Dispose()
    {
        Leaf.Dispose();
        Intermediate.Dispose();
        Root.Dispose();
    }

    private static byte[] Serial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        return serial;
    }
}
