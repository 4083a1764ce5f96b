using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// HTTP/JSON for the v1 API (<c>Broker:Http</c>, docs/http.md). The JSON endpoints are served wherever gRPC is: over HTTP/2 on
/// every port, and over HTTP/1.1 on TLS ports by ALPN. Kestrel cannot serve HTTP/1.1 and h2c (cleartext HTTP/2) on one port,
/// so a cleartext deployment names separate HTTP/1.1 ports here.
/// </summary>
public sealed class HttpOptions
{
    public const string SectionName = "Broker:Http";

    /// <summary>Cleartext HTTP/1.1 addresses for HTTP/JSON callers (e.g. <c>http://127.0.0.1:5152</c>); empty for none.</summary>
    public string Urls { get; set; } = "";

    /// <summary>Whether TLS ports offer HTTP/1.1 besides HTTP/2 (ALPN); on by default.</summary>
    public bool Http1OnTls { get; set; } = true;

    /// <summary>Serves the OpenAPI document of the HTTP/JSON API at <c>/openapi/v1.json</c>; on by default.</summary>
    public bool OpenApi { get; set; } = true;
}

internal sealed class HttpOptionsValidator : IValidateOptions<HttpOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpOptions options)
    {
        foreach (var url in Observability.SideServer.SplitUrls(options.Urls))
        {
            if (!Uri.TryCreate(url.Replace("*", "localhost", StringComparison.Ordinal).Replace("+", "localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                || uri.Scheme != Uri.UriSchemeHttp)
            {
                return ValidateOptionsResult.Fail($"{HttpOptions.SectionName}:Urls: '{url}' is not an http:// address (HTTP/1.1 over TLS is served on the TLS ports by ALPN)");
            }
        }
        return ValidateOptionsResult.Success;
    }
}
