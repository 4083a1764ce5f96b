using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Reading;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// Answers the AWS Secrets Manager Agent's requests (aws-secretsmanager-agent src/server.rs, parse.rs): <c>GET /ping</c>,
/// <c>GET /secretsmanager/get?secretId=&amp;versionId=&amp;versionStage=&amp;refreshNow=</c> and <c>GET /v1/{secretId}</c>, each but
/// /ping with the SSRF token header; the answer is the agent's GetSecretValue JSON (aws_secretsmanager_caching src/output.rs).
/// The secretId is read as <c>MountPrefix/secretId</c> through <see cref="SecretReader"/> as the port's configured identity.
/// </summary>
public sealed partial class AwsAgentServer(IServiceProvider services, IOptions<AwsAgentOptions> options, IHostEnvironment environment,
    ILoggerFactory loggerFactory, ILogger<AwsAgentServer> logger) : DropInServer(services, environment, loggerFactory, logger)
{
    private const string PathPrefix = "/v1/";
    private readonly AwsAgentOptions _options = options.Value;
    private byte[] _token = [];

    protected override string Name => "AWS Secrets Manager Agent";

    protected override string Urls => _options.Urls;

    protected override bool Enabled => _options.Enabled;

    protected override void Map(WebApplication app)
    {
        var token = _options.TokenFile is { Length: > 0 } file
            ? File.ReadAllText(Path.Combine(ContentRootPath, file)).Trim()
            : _options.Token!;
        _token = Encoding.UTF8.GetBytes(token);
        app.Run(HandleAsync);
    }

    // The checks run in the agent's order (Server::get_result): token, then method, then the path.
    private async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "";
        if (path == "/ping")
        {
            await TextAsync(http, StatusCodes.Status200OK, "healthy").ConfigureAwait(false);
            return;
        }
        if (http.Request.Headers.ContainsKey("X-Forwarded-For"))
        {
            await RefusedAsync(http, BrokerErrorKind.InvalidArgument, "a forwarded request is refused").ConfigureAwait(false);
            await TextAsync(http, StatusCodes.Status400BadRequest, "Forwarded").ConfigureAwait(false);
            return;
        }
        if (!HasToken(http.Request.Headers))
        {
            await RefusedAsync(http, BrokerErrorKind.Unauthenticated, "missing or wrong SSRF token header").ConfigureAwait(false);
            await TextAsync(http, StatusCodes.Status403Forbidden, "Bad Token").ConfigureAwait(false);
            return;
        }
        if (!HttpMethods.IsGet(http.Request.Method))
        {
            await TextAsync(http, StatusCodes.Status405MethodNotAllowed, "Not allowed").ConfigureAwait(false);
            return;
        }
        var (query, error) = path == "/secretsmanager/get" ? Parse(http.Request.Query, null)
            : path.StartsWith(PathPrefix, StringComparison.Ordinal) ? Parse(http.Request.Query, Uri.UnescapeDataString(path[PathPrefix.Length..]))
            : (null, "Not found");
        if (query is null)
        {
            await TextAsync(http, error == "Not found" ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest, error!).ConfigureAwait(false);
            return;
        }
        await ReadAsync(http, query).ConfigureAwait(false);
    }

    private async Task ReadAsync(HttpContext http, AgentQuery query)
    {
        var (access, refusal) = await AdmitAsync(http, _options.Identity.ToCaller("aws-agent")).ConfigureAwait(false);
        if (refusal is not null)
        {
            await ErrorAsync(http, refusal).ConfigureAwait(false);
            return;
        }
        try
        {
            var served = await Services.GetRequiredService<SecretReader>().GetAsync(access!, $"{_options.MountPrefix}/{query.SecretId}",
                new VersionSelector(query.VersionId, query.VersionStage), http.RequestAborted, new ReadFreshness(BypassCache: query.RefreshNow)).ConfigureAwait(false);
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(JsonSerializer.Serialize(ToOutput(query.SecretId, served.Value), AwsAgentJsonContext.Default.AgentSecretValue),
                http.RequestAborted).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await ErrorAsync(http, ex).ConfigureAwait(false);
        }
    }

    private AgentSecretValue ToOutput(string secretId, SecretValue value) => new(
        _options.ArnPrefix + secretId,
        secretId,
        value.Version,
        value.Binary is null ? SecretString(value.Data ?? new Dictionary<string, string>()) : null,
        value.Binary is { } binary ? Convert.ToBase64String(binary) : null,
        value.Stages.Count > 0 ? value.Stages : null,
        value.CreatedAt is { } created ? (created.ToUnixTimeMilliseconds() / 1000.0).ToString("R", CultureInfo.InvariantCulture) : null);

    /// <summary>
    /// The inverse of how an aws-sm mount reads a SecretString (AwsSecretsManagerBackend.ParseSecretString): a plain string is the
    /// one field <c>value</c>; other fields are a JSON object.
    /// </summary>
    private static string SecretString(IReadOnlyDictionary<string, string> data) =>
        data.Count == 1 && data.TryGetValue(AwsSecretsManagerBackend.PlainStringField, out var plain)
            ? plain
            : JsonSerializer.Serialize(data.ToDictionary(), AwsAgentJsonContext.Default.DictionaryStringString);

    /// <summary>
    /// Errors as the agent relays Secrets Manager's (utils.rs err_response: <c>{"__type":..., "message":...}</c> with the service's
    /// HTTP status, 400 for its client errors; InternalFailure 500 without a message).
    /// </summary>
    private static Task ErrorAsync(HttpContext http, BrokerException error)
    {
        var (type, message) = error.Kind switch
        {
            BrokerErrorKind.NotFound => ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
            BrokerErrorKind.PermissionDenied => ("AccessDeniedException", error.Message),
            BrokerErrorKind.InvalidArgument => ("InvalidParameterException", error.Message),
            BrokerErrorKind.FailedPrecondition => ("InvalidRequestException", error.Message),
            BrokerErrorKind.ResourceExhausted => ("ThrottlingException", "Rate exceeded"),
            _ => ("InternalFailure", ""),
        };
        http.Response.StatusCode = type == "InternalFailure" ? StatusCodes.Status500InternalServerError : StatusCodes.Status400BadRequest;
        http.Response.ContentType = "application/x-amz-json-1.1";
        return http.Response.WriteAsync(JsonSerializer.Serialize(new AgentError(type, message.Length == 0 ? null : message), AwsAgentJsonContext.Default.AgentError),
            http.RequestAborted);
    }

    /// <summary>The query rules of the agent's GSVQuery: known parameters only, secretId required, refreshNow true/false/1/0.</summary>
    private static (AgentQuery? Query, string? Error) Parse(IQueryCollection parameters, string? pathSecretId)
    {
        string? secretId = pathSecretId, versionId = null, versionStage = null;
        var refresh = false;
        foreach (var (key, values) in parameters)
        {
            var value = values.ToString();
            switch (key)
            {
                case "secretId" when pathSecretId is null: secretId = value; break;
                case "versionId": versionId = value; break;
                case "versionStage": versionStage = value; break;
                case "refreshNow":
                    switch (value.ToLowerInvariant())
                    {
                        case "true" or "1": refresh = true; break;
                        case "false" or "0": refresh = false; break;
                        default: return (null, "invalid refreshNow value");
                    }
                    break;
                default: return (null, $"unknown parameter: {key}");
            }
        }
        return string.IsNullOrEmpty(secretId)
            ? (null, pathSecretId is null ? "missing parameter secretId" : "missing secret ID")
            : (new AgentQuery(secretId, versionId, versionStage, refresh), null);
    }

    private bool HasToken(IHeaderDictionary headers) => _options.EffectiveTokenHeaders.Any(name =>
        headers.TryGetValue(name, out var sent) && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(sent.ToString()), _token));

    private static Task TextAsync(HttpContext http, int status, string text)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsync(text, http.RequestAborted);
    }

    private sealed record AgentQuery(string SecretId, string? VersionId, string? VersionStage, bool RefreshNow);
}

/// <summary>The agent's GetSecretValueOutputDef: ARN, Name, VersionId and CreatedDate always, the others only when set.</summary>
internal sealed record AgentSecretValue(
    [property: JsonPropertyName("ARN")] string Arn,
    string Name,
    string VersionId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SecretString,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SecretBinary,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? VersionStages,
    string? CreatedDate);

internal sealed record AgentError(
    [property: JsonPropertyName("__type")] string Type,
    [property: JsonPropertyName("message"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Message);

[JsonSerializable(typeof(AgentSecretValue))]
[JsonSerializable(typeof(AgentError))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class AwsAgentJsonContext : JsonSerializerContext;
