using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// The parts of a request that Signature Version 4 covers. <see cref="Path"/> is the decoded path
/// (it is URI-encoded once while signing); <see cref="Query"/> holds decoded names and values;
/// <see cref="Headers"/> may repeat a name (values are joined with ',' in arrival order).
/// </summary>
public sealed record SigV4Request(
    string Method,
    string Path,
    IReadOnlyList<KeyValuePair<string, string>> Query,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    string PayloadSha256Hex);

/// <summary>Every intermediate of a signature, so tests can say which stage differs from a published vector.</summary>
public sealed record SigV4Signature(string CanonicalRequest, string StringToSign, string SignedHeaders, string Signature, string Authorization);

/// <summary>
/// AWS Signature Version 4 (HMAC-SHA256), written against the published SigV4 test suite: header names
/// lowercased and sorted, values trimmed with inner runs of spaces collapsed, duplicate headers joined
/// with ',', query parameters encoded (RFC 3986 unreserved set) and sorted by name then value, the path
/// encoded once and not normalized (the broker only ever signs "/").
/// </summary>
public static class SigV4Signer
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string EmptyPayloadSha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>Formats a signing time as the X-Amz-Date header value (basic ISO 8601, UTC).</summary>
    public static string FormatAmzDate(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    public static string Sha256Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static string Sha256Hex(string text) => Sha256Hex(Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Computes the signature of <paramref name="request"/>. The request must already carry every header
    /// to be signed, including <c>Host</c> and <c>X-Amz-Date</c> (and <c>X-Amz-Security-Token</c> when
    /// the credentials have one); every header given is signed.
    /// </summary>
    public static SigV4Signature Sign(SigV4Request request, AwsCredentials credentials, string region, string service, DateTimeOffset signingTime)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(credentials);
        var amzDate = FormatAmzDate(signingTime);
        var date = amzDate[..8];

        var (canonicalHeaders, signedHeaders) = CanonicalizeHeaders(request.Headers);
        var canonicalRequest = string.Join('\n',
            request.Method.ToUpperInvariant(),
            CanonicalUri(request.Path),
            CanonicalQuery(request.Query),
            canonicalHeaders,
            signedHeaders,
            request.PayloadSha256Hex);

        var scope = $"{date}/{region}/{service}/aws4_request";
        var stringToSign = string.Join('\n', Algorithm, amzDate, scope, Sha256Hex(canonicalRequest));

        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + credentials.SecretAccessKey), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        key = HMACSHA256.HashData(key, "aws4_request"u8);
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));

        var authorization = $"{Algorithm} Credential={credentials.AccessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
        return new SigV4Signature(canonicalRequest, stringToSign, signedHeaders, signature, authorization);
    }

    /// <summary>Percent-encodes everything outside the RFC 3986 unreserved set, as UTF-8, with uppercase hex.</summary>
    public static string UriEncode(string value, bool encodeSlash = true)
    {
        var builder = new StringBuilder(value.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~' || (c == '/' && !encodeSlash))
            {
                builder.Append(c);
                continue;
            }
            int length;
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                length = new Rune(c, value[i + 1]).EncodeToUtf8(utf8);
                i++;
            }
            else
            {
                length = (Rune.TryCreate(c, out var rune) ? rune : Rune.ReplacementChar).EncodeToUtf8(utf8);
            }
            foreach (var b in utf8[..length])
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    private static string CanonicalUri(string path) => path.Length == 0 ? "/" : UriEncode(path, encodeSlash: false);

    private static string CanonicalQuery(IReadOnlyList<KeyValuePair<string, string>> query)
    {
        if (query.Count == 0)
        {
            return "";
        }
        var encoded = query.Select(p => (Name: UriEncode(p.Key), Value: UriEncode(p.Value)))
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Value, StringComparer.Ordinal);
        return string.Join('&', encoded.Select(p => p.Name + "=" + p.Value));
    }

    private static (string Canonical, string Signed) CanonicalizeHeaders(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        var byName = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, value) in headers)
        {
            var key = name.Trim().ToLowerInvariant();
            if (!byName.TryGetValue(key, out var values))
            {
                byName[key] = values = [];
            }
            values.Add(CollapseSpaces(value));
        }
        var canonical = new StringBuilder();
        foreach (var (name, values) in byName)
        {
            canonical.Append(name).Append(':').AppendJoin(',', values).Append('\n');
        }
        return (canonical.ToString(), string.Join(';', byName.Keys));
    }

    private static string CollapseSpaces(string value)
    {
        var trimmed = value.AsSpan().Trim();
        var builder = new StringBuilder(trimmed.Length);
        var previousWasSpace = false;
        foreach (var c in trimmed)
        {
            var isSpace = c is ' ' or '\t';
            if (isSpace && previousWasSpace)
            {
                continue;
            }
            builder.Append(isSpace ? ' ' : c);
            previousWasSpace = isSpace;
        }
        return builder.ToString();
    }
}
