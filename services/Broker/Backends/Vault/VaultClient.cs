using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Polly.CircuitBreaker;
using Polly.Timeout;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// A typed client for one Vault connection: KV v2, dynamic credentials, leases and the broker's own
/// token. Every expected failure surfaces as a <see cref="BrokerException"/>; messages and logs name
/// the connection and the broker mount, never a secret path, value or token.
/// </summary>
public sealed partial class VaultClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly VaultConnectionOptions _options;
    private readonly ILogger _logger;

    public VaultClient(string connectionName, VaultConnectionOptions options, HttpMessageHandler handler, TimeProvider timeProvider, ILoggerFactory loggerFactory,
        VaultMetrics metrics)
    {
        ConnectionName = connectionName;
        _options = options;
        _logger = loggerFactory.CreateLogger<VaultClient>();
        var address = options.Address!.ToString();
        _http = new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/"),
            Timeout = Timeout.InfiniteTimeSpan,
        };
        Tokens = new VaultTokenSource(this, options.Auth, timeProvider, metrics, loggerFactory.CreateLogger<VaultTokenSource>());
        metrics.Track(connectionName, Tokens);
    }

    public string ConnectionName { get; }

    /// <summary>The broker's own Vault token: renewed before expiry, replaced by a new login when renewal is refused.</summary>
    public VaultTokenSource Tokens { get; }

    /// <summary>
    /// Vault's unauthenticated <c>sys/health</c>, for the broker's readiness: an active node or a
    /// standby that forwards (standbyok) is up; sealed, uninitialized, a DR secondary or no answer is down.
    /// sys/health needs no token, so the probe is also down while the broker holds no token Vault accepted
    /// (a wrong or expired configured token, a refused login or renewal: <see cref="VaultTokenSource.ReadinessProblemAsync"/>);
    /// it tries again at each probe (the platform may have replaced the credential file) and names the reason, never the token.
    /// </summary>
    public async Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            var (status, _) = await SendRawAsync(HttpMethod.Get, "sys/health?standbyok=true&perfstandbyok=true", content: null, token: null, cancellationToken)
                .ConfigureAwait(false);
            if ((int)status is 200 or 429 or 473 && await Tokens.ReadinessProblemAsync(cancellationToken).ConfigureAwait(false) is { } problem)
            {
                return BackendProbeResult.Down($"vault connection '{ConnectionName}': {problem}");
            }
            return (int)status switch
            {
                200 or 429 or 473 => BackendProbeResult.Up($"vault connection '{ConnectionName}' is unsealed and active"),
                503 => BackendProbeResult.Down($"vault connection '{ConnectionName}' is sealed"),
                501 => BackendProbeResult.Down($"vault connection '{ConnectionName}' is not initialized"),
                472 => BackendProbeResult.Down($"vault connection '{ConnectionName}' is a DR secondary"),
                var other => BackendProbeResult.Down($"vault connection '{ConnectionName}' answered sys/health with {other}"),
            };
        }
        catch (BrokerException ex)
        {
            return BackendProbeResult.Down($"vault connection '{ConnectionName}': {ex.Message}");
        }
    }

    // ---- KV v2 ---------------------------------------------------------------------------------

    /// <summary>Reads the latest or a given version. Deleted and destroyed versions become NOT_FOUND with the reason.</summary>
    public async Task<KvReadData> KvReadAsync(string engine, string name, int? version, string mount, CancellationToken cancellationToken)
    {
        var path = $"{Escape(engine)}/data/{Escape(name)}" + (version is { } v ? "?version=" + v.ToString(CultureInfo.InvariantCulture) : "");
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Get, path, null, mount, "kv-read", cancellationToken).ConfigureAwait(false);
        if (status == HttpStatusCode.NotFound)
        {
            var metadata = TryDeserialize(body, VaultJsonContext.Default.VaultEnvelopeKvReadData)?.Data?.Metadata;
            if (metadata is { Destroyed: true })
            {
                BrokerException.ThrowNotFound($"version {metadata.Version} of this secret was destroyed");
            }
            if (metadata is { DeletionTime.Length: > 0 })
            {
                BrokerException.ThrowNotFound($"version {metadata.Version} of this secret was deleted");
            }
            BrokerException.ThrowNotFound(version is null ? "secret not found" : $"version {version} of this secret does not exist");
        }
        var envelope = Read(status, body, VaultJsonContext.Default.VaultEnvelopeKvReadData, mount, "kv-read");
        if (envelope.Data?.Data is null || envelope.Data.Metadata is null)
        {
            BrokerException.ThrowUnavailable("vault returned a KV response without data");
        }
        return envelope.Data;
    }

    /// <summary>The immediate children of a KV folder ("" for the engine's root; folders end with '/'), or empty when there are none.</summary>
    public async Task<string[]> KvListAsync(string engine, string folder, string mount, CancellationToken cancellationToken)
    {
        // GET with list=true, as Vault's Go client sends it (api/logical.go, ListWithContext): proxies, WAFs and
        // ingresses in front of Vault often refuse the non-standard LIST verb.
        var path = $"{Escape(engine)}/metadata/{(folder.Length == 0 ? "" : Escape(folder) + "/")}?list=true";
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Get, path, null, mount, "kv-list", cancellationToken).ConfigureAwait(false);
        if (status == HttpStatusCode.NotFound)
        {
            return [];
        }
        return Read(status, body, VaultJsonContext.Default.VaultEnvelopeKvListData, mount, "kv-list").Data?.Keys ?? [];
    }

    public async Task<KvMetadataData> KvReadMetadataAsync(string engine, string name, string mount, CancellationToken cancellationToken)
    {
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Get, $"{Escape(engine)}/metadata/{Escape(name)}", null, mount, "kv-metadata", cancellationToken)
            .ConfigureAwait(false);
        return Read(status, body, VaultJsonContext.Default.VaultEnvelopeKvMetadataData, mount, "kv-metadata").Data
            ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned KV metadata without data");
    }

    /// <summary>Writes a new version; with <paramref name="checkAndSet"/> only if the current version is that number (0: only if new).</summary>
    public async Task<KvVersionMetadata> KvWriteAsync(string engine, string name, IReadOnlyDictionary<string, string> data, int? checkAndSet, string mount,
        CancellationToken cancellationToken)
    {
        var request = new KvWriteRequest { Data = data, Options = checkAndSet is { } cas ? new KvWriteOptions { Cas = cas } : null };
        var (status, body) = await SendAuthenticatedAsync(HttpMethod.Post, $"{Escape(engine)}/data/{Escape(name)}",
            () => JsonContent.Create(request, VaultJsonContext.Default.KvWriteRequest), mount, "kv-write", cancellationToken).ConfigureAwait(false);
        return Read(status, body, VaultJsonContext.Default.VaultEnvelopeKvVersionMetadata, mount, "kv-write").Data
            ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a KV write response without data");
    }

    public void Dispose()
    {
        Tokens.Dispose();
        _http.Dispose();
    }

    // ---- transport -----------------------------------------------------------------------------

    private Task<(HttpStatusCode Status, byte[] Body)> SendAuthenticatedAsync(HttpMethod method, string path, Func<HttpContent>? content, string mount,
        string operation, CancellationToken cancellationToken) =>
        SendAuthenticatedAsync(method, path, content, mount, operation, mintsCredentials: false, cancellationToken);

    /// <summary>
    /// Sends with the broker's token. A 403 is checked against the token's health: when Vault says the token
    /// is invalid (or it turns out dead), a new login replaces it and the request is sent once more; a
    /// policy denial is returned as it is. A request that mints credentials is not cancelled with the
    /// caller once sent, so the broker learns what Vault issued (see IssueCredentialsAsync).
    /// </summary>
    private async Task<(HttpStatusCode Status, byte[] Body)> SendAuthenticatedAsync(HttpMethod method, string path, Func<HttpContent>? content, string mount,
        string operation, bool mintsCredentials, CancellationToken cancellationToken)
    {
        var sendToken = mintsCredentials ? CancellationToken.None : cancellationToken;
        var token = await Tokens.GetTokenAsync(cancellationToken).ConfigureAwait(false);
        var result = await SendRawAsync(method, path, content?.Invoke(), token, sendToken, mintsCredentials).ConfigureAwait(false);
        if (result.Status == HttpStatusCode.Forbidden
            && await Tokens.RecoverFromDeniedAsync(token, VaultErrors.IsInvalidToken(result.Body), cancellationToken).ConfigureAwait(false))
        {
            LogRetriedAfterRelogin(ConnectionName, mount, operation);
            token = await Tokens.GetTokenAsync(cancellationToken).ConfigureAwait(false);
            result = await SendRawAsync(method, path, content?.Invoke(), token, sendToken, mintsCredentials).ConfigureAwait(false);
        }
        return result;
    }

    private async Task<(HttpStatusCode Status, byte[] Body)> SendRawAsync(HttpMethod method, string path, HttpContent? content, string? token,
        CancellationToken cancellationToken, bool mintsCredentials = false)
    {
        using var request = new HttpRequestMessage(method, new Uri("v1/" + path, UriKind.Relative)) { Content = content };
        request.Options.Set(VaultConnections.MintsCredentials, mintsCredentials);
        request.Headers.Add("X-Vault-Request", "true");
        if (token is not null)
        {
            request.Headers.Add("X-Vault-Token", token);
        }
        if (!string.IsNullOrWhiteSpace(_options.Namespace))
        {
            request.Headers.Add("X-Vault-Namespace", _options.Namespace.Trim('/'));
        }
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            return (response.StatusCode, body);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (BrokenCircuitException ex)
        {
            LogCircuitOpen(ConnectionName);
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault is failing; the broker pauses calls to it briefly", ex);
        }
        catch (Exception ex) when (ex is TimeoutRejectedException or OperationCanceledException)
        {
            LogTransportFailed(ConnectionName, "timeout");
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault did not answer in time", ex);
        }
        catch (HttpRequestException ex)
        {
            LogTransportFailed(ConnectionName, ex.HttpRequestError.ToString());
            throw new BrokerException(BrokerErrorKind.Unavailable, "vault is unreachable", ex);
        }
    }

    private VaultEnvelope<T> Read<T>(HttpStatusCode status, byte[] body, JsonTypeInfo<VaultEnvelope<T>> typeInfo, string mount, string operation)
    {
        if (status != HttpStatusCode.OK)
        {
            LogCallFailed(ConnectionName, mount, operation, (int)status);
            VaultErrors.Throw(status, body);
        }
        return TryDeserialize(body, typeInfo) ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault returned a response the broker cannot read");
    }

    private static T? TryDeserialize<T>(byte[] body, JsonTypeInfo<T> typeInfo)
    {
        if (body.Length == 0)
        {
            return default;
        }
        try
        {
            return JsonSerializer.Deserialize(body, typeInfo);
        }
        catch (JsonException)
        {
            return default;
        }
    }

    internal static Dictionary<string, string> ToStrings(Dictionary<string, JsonElement> data) =>
        data.ToDictionary(kv => kv.Key, kv => kv.Value.ValueKind switch
        {
            JsonValueKind.String => kv.Value.GetString() ?? "",
            JsonValueKind.Null => "",
            _ => kv.Value.GetRawText(),
        }, StringComparer.Ordinal);

    /// <summary>Escapes each segment of a Vault path, keeping the '/' between them.</summary>
    internal static string EscapePath(string path) => string.Join('/', path.Trim('/').Split('/').Select(Uri.EscapeDataString));

    private static string Escape(string path) => EscapePath(path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}, mount {Mount}: {Operation} failed with HTTP {Status}")]
    private partial void LogCallFailed(string connection, string mount, string operation, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}: transport failure ({Reason})")]
    private partial void LogTransportFailed(string connection, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}: circuit open, call refused")]
    private partial void LogCircuitOpen(string connection);

    [LoggerMessage(Level = LogLevel.Information, Message = "Vault connection {Connection}, mount {Mount}: {Operation} retried after the broker's token was replaced")]
    private partial void LogRetriedAfterRelogin(string connection, string mount, string operation);
}
