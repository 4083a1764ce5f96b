using System.Formats.Asn1;
using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace SecretsBroker.Broker.Auth;

/// <summary>Turns what each authentication method proved into the one <see cref="CallerIdentity"/> type.</summary>
public static class IdentityMapping
{
    public const string JwtMethod = "jwt";
    public const string MtlsMethod = "mtls";

    /// <summary>
    /// From validated JWT claims. Kubernetes service-account tokens carry a <c>kubernetes.io</c> object claim
    /// with <c>namespace</c> and <c>serviceaccount.name</c>, mapped to the attributes <c>namespace</c> and <c>service_account</c>.
    /// </summary>
    public static CallerIdentity FromJwt(ClaimsPrincipal principal, IReadOnlyDictionary<string, string> attributeClaims)
    {
        var subject = principal.FindFirst("sub")?.Value ?? principal.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "";
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (principal.FindFirst("kubernetes.io")?.Value is { Length: > 0 } kubernetes)
        {
            try
            {
                using var document = JsonDocument.Parse(kubernetes);
                var root = document.RootElement;
                if (root.TryGetProperty("namespace", out var ns) && ns.ValueKind == JsonValueKind.String)
                {
                    attributes["namespace"] = ns.GetString()!;
                }
                if (root.TryGetProperty("serviceaccount", out var sa) && sa.ValueKind == JsonValueKind.Object
                    && sa.TryGetProperty("name", out var saName) && saName.ValueKind == JsonValueKind.String)
                {
                    attributes["service_account"] = saName.GetString()!;
                }
            }
            catch (JsonException)
            {
                // A malformed claim gives no attributes; policies templated on them then match nothing.
            }
        }
        foreach (var (attribute, claim) in attributeClaims)
        {
            if (principal.FindFirst(claim)?.Value is { } value)
            {
                attributes[attribute] = value;
            }
        }
        return new CallerIdentity(subject, JwtMethod, attributes);
    }

    /// <summary>
    /// From a validated client certificate: the first URI SAN (a SPIFFE ID such as
    /// spiffe://cluster.local/ns/team-alpha/sa/trainer gives trust_domain, namespace and service_account),
    /// else the subject's common name.
    /// </summary>
    public static CallerIdentity FromCertificate(X509Certificate2 certificate)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        var uri = FirstUriSubjectAlternativeName(certificate);
        if (uri is not null)
        {
            if (Uri.TryCreate(uri, UriKind.Absolute, out var spiffe) && spiffe.Scheme == "spiffe")
            {
                attributes["trust_domain"] = spiffe.Host;
                var segments = spiffe.AbsolutePath.Trim('/').Split('/');
                for (var i = 0; i + 1 < segments.Length; i += 2)
                {
                    switch (segments[i])
                    {
                        case "ns":
                            attributes["namespace"] = Uri.UnescapeDataString(segments[i + 1]);
                            break;
                        case "sa":
                            attributes["service_account"] = Uri.UnescapeDataString(segments[i + 1]);
                            break;
                    }
                }
            }
            return new CallerIdentity(uri, MtlsMethod, attributes) { Issuer = certificate.Issuer, CredentialExpiresAt = NotAfter(certificate) };
        }
        return new CallerIdentity(certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false), MtlsMethod, attributes)
        {
            Issuer = certificate.Issuer,
            CredentialExpiresAt = NotAfter(certificate),
        };
    }

    /// <summary>X509Certificate2.NotAfter is local time; streams compare against UTC.</summary>
    private static DateTimeOffset NotAfter(X509Certificate2 certificate) => new(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);

    /// <summary>The first uniformResourceIdentifier ([6] IA5String) of the subjectAltName extension (RFC 5280 4.2.1.6).</summary>
    private static string? FirstUriSubjectAlternativeName(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions["2.5.29.17"];
        if (extension is null)
        {
            return null;
        }
        try
        {
            var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                if (names.PeekTag().HasSameClassAndValue(uriTag))
                {
                    return names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag);
                }
                names.ReadEncodedValue();
            }
        }
        catch (AsnContentException)
        {
            // A malformed extension yields no URI; the subject's common name is used instead.
        }
        return null;
    }
}
