using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary>
/// Client certificates for operators (<c>Audit:Auth:Mtls</c>), the settings shape of the broker's
/// <c>Broker:Auth:Mtls</c>: when enabled, the gRPC port's TLS handshake requires a client certificate that chains to
/// one of <see cref="CaFiles"/> and is valid for client authentication; the operator token is still required on top.
/// </summary>
public sealed class OperatorMtlsOptions
{
    public const string SectionName = "Audit:Auth:Mtls";

    public bool Enabled { get; set; }

    /// <summary>PEM files of the CAs that issue operators' client certificates (relative to the content root).</summary>
    public List<string> CaFiles { get; set; } = [];

    /// <summary>Whether to check revocation online; off by default, since CRL endpoints are often unreachable from clusters.</summary>
    public bool CheckRevocation { get; set; }
}

/// <summary>Checks <see cref="OperatorMtlsOptions"/> at start: CA files that load, and a gRPC endpoint with TLS.</summary>
public sealed class OperatorMtlsOptionsValidator(IConfiguration configuration, IHostEnvironment environment) : IValidateOptions<OperatorMtlsOptions>
{
    public ValidateOptionsResult Validate(string? name, OperatorMtlsOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }
        if (options.CaFiles.Count == 0)
        {
            return ValidateOptionsResult.Fail($"{OperatorMtlsOptions.SectionName}:CaFiles needs at least one CA file when client certificates are required");
        }
        var url = configuration["Kestrel:Endpoints:Grpc:Url"];
        if (url is null || !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return ValidateOptionsResult.Fail(
                $"{OperatorMtlsOptions.SectionName}:Enabled needs TLS on the gRPC endpoint: set Kestrel:Endpoints:Grpc:Url to https://... with its Certificate:Path and KeyPath");
        }
        try
        {
            _ = OperatorCertificateValidator.Load(options, environment);
        }
        catch (InvalidOperationException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }
        return ValidateOptionsResult.Success;
    }
}

/// <summary>
/// Kestrel's client-certificate check for the audit service: the chain must end at a self-signed certificate of the
/// configured CA files (they replace the machine's store, as the broker's mTLS does with CustomRootTrust), through
/// intermediates the client sent or the files hold, with the client-authentication usage, within its validity.
/// </summary>
public sealed partial class OperatorCertificateValidator
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    private readonly X509Certificate2Collection _roots;
    private readonly X509Certificate2Collection _intermediates;
    private readonly bool _checkRevocation;
    private readonly ILogger _logger;

    private OperatorCertificateValidator(X509Certificate2Collection roots, X509Certificate2Collection intermediates, bool checkRevocation, ILogger logger)
    {
        (_roots, _intermediates, _checkRevocation, _logger) = (roots, intermediates, checkRevocation, logger);
    }

    /// <summary>Reads the CA files; throws <see cref="InvalidOperationException"/> naming the setting when one does not load.</summary>
    public static OperatorCertificateValidator Load(OperatorMtlsOptions options, IHostEnvironment environment, ILogger? logger = null)
    {
        var roots = new X509Certificate2Collection();
        var intermediates = new X509Certificate2Collection();
        for (var i = 0; i < options.CaFiles.Count; i++)
        {
            var path = Path.Combine(environment.ContentRootPath, options.CaFiles[i]);
            var setting = $"{OperatorMtlsOptions.SectionName}:CaFiles:{i}";
            var all = new X509Certificate2Collection();
            try
            {
                all.ImportFromPemFile(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new InvalidOperationException($"{setting}: the CA file '{path}' cannot be read as PEM certificates ({ex.GetType().Name})", ex);
            }
            if (all.Count == 0)
            {
                throw new InvalidOperationException($"{setting}: the CA file '{path}' holds no PEM certificate");
            }
            foreach (var certificate in all)
            {
                // Only self-signed certificates anchor trust; others help build the chain (as the broker's CustomCaValidator).
                (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) ? roots : intermediates).Add(certificate);
            }
        }
        if (roots.Count == 0)
        {
            throw new InvalidOperationException($"{OperatorMtlsOptions.SectionName}:CaFiles hold no self-signed (root) CA certificate; add the root CA that issues operators' certificates");
        }
        return new OperatorCertificateValidator(roots, intermediates, options.CheckRevocation, logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
    }

    /// <summary>Requires a client certificate on every https endpoint (the gRPC port) and checks it with this validator.</summary>
    public void ApplyTo(KestrelServerOptions kestrel) => kestrel.ConfigureHttpsDefaults(https =>
    {
        https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
        https.ClientCertificateValidation = Validate;
    });

    /// <summary>Kestrel's ClientCertificateValidation: true when the certificate chains to a configured root for client authentication.</summary>
    public bool Validate(X509Certificate2 certificate, X509Chain? presentedChain, SslPolicyErrors errors)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_roots);
        policy.ExtraStore.AddRange(_intermediates);
        policy.RevocationMode = _checkRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = !_checkRevocation;
        policy.ApplicationPolicy.Add(ClientAuthentication);
        if (presentedChain is not null)
        {
            policy.ExtraStore.AddRange(presentedChain.ChainPolicy.ExtraStore);
        }
        try
        {
            if (chain.Build(certificate))
            {
                return true;
            }
            LogRefused(_logger, certificate.Issuer, string.Join(", ", chain.ChainStatus.Select(s => s.Status).Distinct()));
            return false;
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, certificate))
                {
                    element.Certificate.Dispose();
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a TLS client certificate issued by {Issuer}: {Status}")]
    private static partial void LogRefused(ILogger logger, string issuer, string status);
}

internal static class OperatorCertificateRegistration
{
    /// <summary>Binds and validates <c>Audit:Auth:Mtls</c>; when enabled, Kestrel requires and checks client certificates.</summary>
    public static IServiceCollection AddOperatorCertificates(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<OperatorMtlsOptions>().BindConfiguration(OperatorMtlsOptions.SectionName);
        services.AddSingleton<IValidateOptions<OperatorMtlsOptions>, OperatorMtlsOptionsValidator>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<OperatorMtlsOptions>, IHostEnvironment, ILoggerFactory>((kestrel, mtls, environment, loggers) =>
        {
            if (mtls.Value.Enabled)
            {
                OperatorCertificateValidator.Load(mtls.Value, environment, loggers.CreateLogger<OperatorCertificateValidator>()).ApplyTo(kestrel);
            }
        });
        return services;
    }
}
