namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Signs every outgoing request with SigV4, once per attempt (it sits inside the retry handler, so a
/// retried request gets a fresh X-Amz-Date and, after a refresh, fresh credentials). Signs host,
/// content-type, every x-amz-* header and the body's SHA-256.
/// </summary>
public sealed class SigV4SigningHandler(IAwsCredentialSource credentials, string region, string service, TimeProvider timeProvider)
    : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var current = await credentials.GetCredentialsAsync(cancellationToken).ConfigureAwait(false);
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var now = timeProvider.GetUtcNow();
        var uri = request.RequestUri ?? throw new InvalidOperationException("the request has no URI");

        request.Headers.Remove("Authorization");
        request.Headers.Remove("X-Amz-Date");
        request.Headers.Remove("X-Amz-Security-Token");
        request.Headers.Host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        request.Headers.TryAddWithoutValidation("X-Amz-Date", SigV4Signer.FormatAmzDate(now));
        if (current.SessionToken is { } token)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", token);
        }

        var headers = new List<KeyValuePair<string, string>> { new("host", request.Headers.Host) };
        foreach (var (name, values) in request.Headers)
        {
            if (name.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase))
            {
                headers.AddRange(values.Select(v => new KeyValuePair<string, string>(name, v)));
            }
        }
        if (request.Content?.Headers.ContentType is { } contentType)
        {
            headers.Add(new("content-type", contentType.ToString()));
        }

        var query = ParseQuery(uri.Query);
        var signature = SigV4Signer.Sign(
            new SigV4Request(request.Method.Method, Uri.UnescapeDataString(uri.AbsolutePath), query, headers, SigV4Signer.Sha256Hex(body)),
            current, region, service, now);
        request.Headers.TryAddWithoutValidation("Authorization", signature.Authorization);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static List<KeyValuePair<string, string>> ParseQuery(string query)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? part : part[..equals];
            var value = equals < 0 ? "" : part[(equals + 1)..];
            result.Add(new(Uri.UnescapeDataString(name), Uri.UnescapeDataString(value)));
        }
        return result;
    }
}
