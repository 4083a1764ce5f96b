using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SecretsBroker.Broker.Tls;

/// <summary>
/// The one "custom CA file" check of every TLS client the broker has (Vault, a Secrets Manager endpoint
/// override, Redis, the JWKS/OIDC fetch): a server certificate is accepted when it chains to a
/// self-signed certificate of the configured PEM file, through the intermediates the server presented
/// in its handshake (and any intermediate the file holds). This is what curl <c>--cacert</c>, Go's
/// <c>tls.Config.RootCAs</c> (Vault's <c>VAULT_CACERT</c>) and botocore's <c>verify=</c> do: the file replaces
/// the machine's trust store, and enterprise servers usually send leaf + intermediate while the file holds
/// only the root. The host name is still checked by SslStream: a name mismatch is never excused.
/// Revocation is not checked (private CAs rarely publish a reachable CRL) and nothing is downloaded.
/// </summary>
public sealed class CustomCaValidator
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    private readonly X509Certificate2Collection _roots;
    private readonly X509Certificate2Collection _intermediates;

    private CustomCaValidator(X509Certificate2Collection roots, X509Certificate2Collection intermediates)
    {
        _roots = roots;
        _intermediates = intermediates;
    }

    /// <summary>
    /// Reads the CA file (PEM, one or more certificates). Throws <see cref="InvalidOperationException"/>
    /// with a message naming <paramref name="settingName"/> when it is missing, unreadable or holds no
    /// self-signed CA certificate, so a bad setting stops the broker at start.
    /// </summary>
    public static CustomCaValidator FromPemFile(string path, string settingName)
    {
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new InvalidOperationException($"{settingName}: the CA file '{path}' cannot be read as PEM certificates ({ex.GetType().Name})", ex);
        }
        var roots = new X509Certificate2Collection();
        var intermediates = new X509Certificate2Collection();
        foreach (var certificate in all)
        {
            // Only self-signed certificates anchor trust (as in OpenSSL without partial chains); others help build the chain.
            (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) ? roots : intermediates).Add(certificate);
        }
        if (roots.Count == 0)
        {
            throw new InvalidOperationException(
                $"{settingName}: the CA file '{path}' holds no self-signed (root) CA certificate; put the root CA that issued the server's chain in it");
        }
        return new CustomCaValidator(roots, intermediates);
    }

    /// <summary>Makes <paramref name="handler"/> check server certificates with this validator (and nothing else).</summary>
    public SocketsHttpHandler ApplyTo(SocketsHttpHandler handler)
    {
        handler.SslOptions.RemoteCertificateValidationCallback = ValidateServerCertificate;
        return handler;
    }

    /// <summary>
    /// A <see cref="RemoteCertificateValidationCallback"/>: true when <paramref name="certificate"/> is valid for
    /// the host SslStream checked and chains to one of the file's roots. <paramref name="presentedChain"/> is the
    /// chain SslStream built, whose extra store holds the certificates the server sent after its leaf.
    /// </summary>
    public bool ValidateServerCertificate(object? sender, X509Certificate? certificate, X509Chain? presentedChain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false; // no certificate, or a host name mismatch
        }
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_roots);
        policy.ExtraStore.AddRange(_intermediates);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.ApplicationPolicy.Add(ServerAuthentication);
        if (presentedChain is not null)
        {
            policy.ExtraStore.AddRange(presentedChain.ChainPolicy.ExtraStore);
            foreach (var element in presentedChain.ChainElements.Skip(1))
            {
                policy.ExtraStore.Add(element.Certificate);
            }
        }
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        try
        {
            return chain.Build(leaf);
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, leaf))
                {
                    element.Certificate.Dispose();
                }
            }
            if (!ReferenceEquals(leaf, certificate))
            {
                leaf.Dispose();
            }
        }
    }
}
