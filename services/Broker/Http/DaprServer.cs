using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Reading;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// Answers Dapr's secrets API (dapr pkg/api/http/secrets.go, pkg/api/universal/secrets.go): <c>GET /v1.0/secrets/{store}/{key}</c>
/// with <c>metadata.version_id</c> / <c>metadata.version_stage</c>, answered with the secret's fields as a JSON object, and
/// <c>GET /v1.0/secrets/{store}/bulk</c>, answered with every secret of the store the identity may read, by key. Errors use
/// Dapr's codes and statuses (pkg/messages/predefined.go): <c>{"errorCode":..., "message":...}</c>.
/// </summary>
public sealed class DaprServer(IServiceProvider services, IOptions<DaprOptions> options, IHostEnvironment environment,
    ILoggerFactory loggerFactory, ILogger<DaprServer> logger) : DropInServer(services, environment, loggerFactory, logger)
{
    private const string MetadataPrefix = "metadata.";
    private readonly DaprOptions _options = options.Value;

    protected override string Name => "Dapr secrets API";

    protected override string Urls => _options.Urls;

    protected override bool Enabled => _options.Enabled;

    protected override void Map(WebApplication app)
    {
        app.MapGet("/v1.0/secrets/{store}/bulk", BulkAsync);
        // A catch-all key: a key with '/' names a secret in a folder of the store (Dapr's own route takes one segment).
        app.MapGet("/v1.0/secrets/{store}/{**key}", GetAsync);
    }

    private async Task GetAsync(HttpContext http, string store, string key)
    {
        if (await AdmitAsync(http, store).ConfigureAwait(false) is not { } admitted)
        {
            return;
        }
        var metadata = Metadata(http.Request.Query);
        var selector = new VersionSelector(metadata.GetValueOrDefault("version_id"), metadata.GetValueOrDefault("version_stage"));
        try
        {
            var served = await Services.GetRequiredService<SecretReader>().GetAsync(admitted.Access, $"{admitted.Prefix}/{key}", selector, http.RequestAborted)
                .ConfigureAwait(false);
            await JsonAsync(http, Fields(key, served.Value)).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.PermissionDenied)
        {
            await ErrorAsync(http, StatusCodes.Status403Forbidden, "ERR_PERMISSION_DENIED", $"access denied by policy to get \"{key}\" from \"{store}\"").ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await ErrorAsync(http, StatusCodes.Status500InternalServerError, "ERR_SECRET_GET",
                $"failed getting secret with key {key} from secret store {store}: {ex.Message}").ConfigureAwait(false);
        }
    }

    /// <summary>Lists the store and reads what is listed; secrets the identity may not read are left out, as Dapr filters by its allow list.</summary>
    private async Task BulkAsync(HttpContext http, string store)
    {
        if (await AdmitAsync(http, store).ConfigureAwait(false) is not { } admitted)
        {
            return;
        }
        var reader = Services.GetRequiredService<SecretReader>();
        var options = Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        var result = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        try
        {
            var paths = new List<string>();
            var token = "";
            do
            {
                var page = await reader.ListAsync(admitted.Access, admitted.Prefix, options.MaxListPageSize, token, http.RequestAborted).ConfigureAwait(false);
                paths.AddRange(page.Entries.Select(e => e.Name));
                token = page.NextPageToken;
            }
            while (token.Length > 0);
            foreach (var chunk in paths.Chunk(options.MaxBatchSize))
            {
                foreach (var item in await reader.GetManyAsync(admitted.Access, chunk, http.RequestAborted).ConfigureAwait(false))
                {
                    if (item.Secret is { } secret)
                    {
                        var key = item.Path[(admitted.Prefix.Length + 1)..];
                        result[key] = Fields(key, secret.Value);
                    }
                }
            }
        }
        catch (BrokerException ex)
        {
            await ErrorAsync(http, StatusCodes.Status500InternalServerError, "ERR_SECRET_GET", $"failed getting secrets from secret store {store}: {ex.Message}")
                .ConfigureAwait(false);
            return;
        }
        await JsonAsync(http, result).ConfigureAwait(false);
    }

    /// <summary>The API token check, the store lookup (Dapr answers an unknown store 401 ERR_SECRET_STORE_NOT_FOUND) and the rate limit.</summary>
    private async Task<(Auth.AccessContext Access, string Prefix)?> AdmitAsync(HttpContext http, string store)
    {
        if (_options.ApiToken is { Length: > 0 } expected && !(http.Request.Headers.TryGetValue("dapr-api-token", out var sent)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(sent.ToString()), Encoding.UTF8.GetBytes(expected))))
        {
            await RefusedAsync(http, BrokerErrorKind.Unauthenticated, "missing or wrong dapr-api-token").ConfigureAwait(false);
            // Go's http.Error: text/plain and a trailing newline.
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            http.Response.ContentType = "text/plain; charset=utf-8";
            await http.Response.WriteAsync("invalid api token\n", http.RequestAborted).ConfigureAwait(false);
            return null;
        }
        if (!_options.Stores.TryGetValue(store, out var prefix))
        {
            await RefusedAsync(http, BrokerErrorKind.NotFound, "no such Dapr secret store").ConfigureAwait(false);
            await ErrorAsync(http, StatusCodes.Status401Unauthorized, "ERR_SECRET_STORE_NOT_FOUND", $"failed finding secret store with key {store}").ConfigureAwait(false);
            return null;
        }
        var (access, refusal) = await AdmitAsync(http, _options.Identity.ToCaller("dapr")).ConfigureAwait(false);
        if (refusal is not null)
        {
            await ErrorAsync(http, StatusCodes.Status429TooManyRequests, "ERR_SECRET_GET", refusal.Message).ConfigureAwait(false);
            return null;
        }
        return (access!, prefix);
    }

    private static Dictionary<string, string> Metadata(IQueryCollection query) => query
        .Where(p => p.Key.StartsWith(MetadataPrefix, StringComparison.Ordinal))
        .ToDictionary(p => p.Key[MetadataPrefix.Length..], p => p.Value.ToString(), StringComparer.Ordinal);

    /// <summary>A key/value secret's fields; a binary secret as one field named by the key, base64-encoded.</summary>
    private static Dictionary<string, string> Fields(string key, SecretValue value) => value.Binary is { } binary
        ? new(StringComparer.Ordinal) { [key] = Convert.ToBase64String(binary) }
        : new Dictionary<string, string>(value.Data ?? new Dictionary<string, string>(), StringComparer.Ordinal);

    private static Task JsonAsync<T>(HttpContext http, T value)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(value, typeof(T), DaprJsonContext.Default), http.RequestAborted);
    }

    private static Task ErrorAsync(HttpContext http, int status, string code, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(new DaprError(code, message), DaprJsonContext.Default.DaprError), http.RequestAborted);
    }
}

internal sealed record DaprError([property: JsonPropertyName("errorCode")] string ErrorCode, [property: JsonPropertyName("message")] string Message);

[JsonSerializable(typeof(DaprError))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
internal sealed partial class DaprJsonContext : JsonSerializerContext;
