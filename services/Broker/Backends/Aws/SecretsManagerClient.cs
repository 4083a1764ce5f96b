using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Polly.Timeout;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// A small typed AWS Secrets Manager client speaking the JSON 1.1 protocol (<c>POST /</c>,
/// <c>X-Amz-Target: secretsmanager.&lt;Operation&gt;</c>, <c>Content-Type: application/x-amz-json-1.1</c>).
/// Signing, retries and timeouts live in the <see cref="HttpClient"/>'s handlers (see
/// <see cref="SecretsManagerHttp"/>). Every failure is a <see cref="SecretsManagerException"/>, except
/// cancellation by the caller, which stays an <see cref="OperationCanceledException"/>.
/// </summary>
public sealed partial class SecretsManagerClient(HttpClient httpClient, Uri endpoint)
{
    /// <summary>BatchGetSecretValue accepts at most this many ids per call.</summary>
    public const int MaxBatchIds = 20;

    public const string ContentType = "application/x-amz-json-1.1";

    public Uri Endpoint { get; } = endpoint;

    public Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("GetSecretValue", request, SecretsManagerJsonContext.Default.GetSecretValueRequest,
            SecretsManagerJsonContext.Default.GetSecretValueResponse, cancellationToken);

    /// <summary>
    /// Reads the current version of each id with BatchGetSecretValue, in chunks of <see cref="MaxBatchIds"/>,
    /// following NextToken. Missing or unreadable ids come back in <see cref="BatchGetSecretValueResponse.Errors"/>.
    /// </summary>
    public async Task<BatchGetSecretValueResponse> BatchGetSecretValueAsync(IReadOnlyList<string> secretIds, CancellationToken cancellationToken = default)
    {
        var values = new List<GetSecretValueResponse>(secretIds.Count);
        var errors = new List<BatchGetSecretValueError>();
        foreach (var chunk in secretIds.Chunk(MaxBatchIds))
        {
            string? nextToken = null;
            do
            {
                var page = await BatchGetSecretValuePageAsync(new BatchGetSecretValueRequest { SecretIdList = [.. chunk], NextToken = nextToken },
                    cancellationToken).ConfigureAwait(false);
                values.AddRange(page.SecretValues ?? []);
                errors.AddRange(page.Errors ?? []);
                nextToken = string.IsNullOrEmpty(page.NextToken) ? null : page.NextToken;
            }
            while (nextToken is not null);
        }
        return new BatchGetSecretValueResponse { SecretValues = values, Errors = errors };
    }

    /// <summary>One raw BatchGetSecretValue call (for filter-based reads); prefer <see cref="BatchGetSecretValueAsync"/> for ids.</summary>
    public Task<BatchGetSecretValueResponse> BatchGetSecretValuePageAsync(BatchGetSecretValueRequest request, CancellationToken cancellationToken = default)
    {
        if (request.SecretIdList is { Count: > MaxBatchIds })
        {
            throw new ArgumentException($"BatchGetSecretValue takes at most {MaxBatchIds} ids per call", nameof(request));
        }
        return SendAsync("BatchGetSecretValue", request, SecretsManagerJsonContext.Default.BatchGetSecretValueRequest,
            SecretsManagerJsonContext.Default.BatchGetSecretValueResponse, cancellationToken);
    }

    public Task<DescribeSecretResponse> DescribeSecretAsync(DescribeSecretRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("DescribeSecret", request, SecretsManagerJsonContext.Default.DescribeSecretRequest,
            SecretsManagerJsonContext.Default.DescribeSecretResponse, cancellationToken);

    /// <summary>One page of ListSecrets; pass <see cref="ListSecretsResponse.NextToken"/> back for the next.</summary>
    public Task<ListSecretsResponse> ListSecretsAsync(ListSecretsRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("ListSecrets", request, SecretsManagerJsonContext.Default.ListSecretsRequest,
            SecretsManagerJsonContext.Default.ListSecretsResponse, cancellationToken);

    /// <summary>Reads AWS's error type from the <c>x-amzn-ErrorType</c> header or the body's <c>__type</c> (or <c>code</c>).</summary>
    public static string? ReadErrorType(HttpResponseMessage response, ReadOnlySpan<byte> body)
    {
        if (response.Headers.TryGetValues("x-amzn-ErrorType", out var values) && values.FirstOrDefault() is { Length: > 0 } header)
        {
            return SecretsManagerErrors.NormalizeErrorType(header);
        }
        if (body.IsEmpty)
        {
            return null;
        }
        if (body.TrimStart(" \t\r\n"u8) is [(byte)'<', ..])
        {
            // Some front ends (and emulators) answer authentication failures in the query protocol's XML.
            return ReadXmlErrorCode(body.ToArray());
        }
        try
        {
            var error = JsonSerializer.Deserialize(body, SecretsManagerJsonContext.Default.SecretsManagerErrorBody);
            return SecretsManagerErrors.NormalizeErrorType(error?.Type ?? error?.Code);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? ReadXmlErrorCode(byte[] body)
    {
        try
        {
            using var stream = new MemoryStream(body);
            using var reader = System.Xml.XmlReader.Create(stream, new System.Xml.XmlReaderSettings
            {
                DtdProcessing = System.Xml.DtdProcessing.Prohibit,
                XmlResolver = null,
                MaxCharactersInDocument = 64 * 1024,
            });
            while (reader.Read())
            {
                if (reader.NodeType == System.Xml.XmlNodeType.Element && reader.LocalName == "Code")
                {
                    return SecretsManagerErrors.NormalizeErrorType(reader.ReadElementContentAsString());
                }
            }
        }
        catch (System.Xml.XmlException)
        {
            // Not readable: the HTTP status decides.
        }
        return null;
    }

    private async Task<TResponse> SendAsync<TRequest, TResponse>(string operation, TRequest request,
        JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, requestType);
        using var message = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = new ByteArrayContent(body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue(ContentType);
        message.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager." + operation);

        HttpResponseMessage response;
        byte[] responseBody;
        try
        {
            response = await httpClient.SendAsync(message, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            responseBody = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new SecretsManagerException(operation, "Timeout", null, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new SecretsManagerException(operation, "Timeout", null, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new SecretsManagerException(operation, "Transport", null, ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var type = ReadErrorType(response, responseBody);
                throw new SecretsManagerException(operation, type ?? (response.StatusCode >= HttpStatusCode.InternalServerError ? "ServiceUnavailable" : "UnrecognizedError"),
                    response.StatusCode);
            }
            try
            {
                return JsonSerializer.Deserialize(responseBody, responseType)
                    ?? throw new SecretsManagerException(operation, "MalformedResponse", response.StatusCode);
            }
            catch (JsonException ex)
            {
                // JsonException messages can quote the offending token (a secret value): keep only the type.
                throw new SecretsManagerException(operation, "MalformedResponse", response.StatusCode, new JsonException("the response body is not the expected JSON", ex.Path, ex.LineNumber, ex.BytePositionInLine));
            }
        }
    }
}
