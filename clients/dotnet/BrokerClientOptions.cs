using System.Security.Cryptography.X509Certificates;

namespace SecretsBroker.Client;

/// <summary>How to reach a broker and prove who the caller is.</summary>
public sealed class BrokerClientOptions
{
    /// <summary>The broker's address, for example <c>https://secrets-broker.platform:8443</c> or <c>http://127.0.0.1:5151</c> for development.</summary>
    public Uri Address { get; set; } = new("http://127.0.0.1:5151");

    /// <summary>A bearer token. Prefer <see cref="TokenFile"/> for tokens that rotate (Kubernetes projected service-account tokens).</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the bearer token; re-read when it changes, so rotated tokens are picked up.</summary>
    public string? TokenFile { get; set; }

    /// <summary>Deadline applied to calls that do not set their own. Null means no deadline.</summary>
    public TimeSpan? DefaultTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A client certificate (with its private key) for brokers that authenticate callers by mTLS.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>
    /// CAs that issue the broker's server certificate, trusted instead of the system store (private PKI).
    /// Null uses the system store.
    /// </summary>
    public X509Certificate2Collection? TrustedCaCertificates { get; set; }

    /// <summary>Attempts (including the first) for calls that fail UNAVAILABLE; 1 disables retries.</summary>
    public int MaxAttempts { get; set; } = 4;
}
