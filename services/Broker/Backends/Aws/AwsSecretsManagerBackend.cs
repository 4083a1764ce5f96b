using System.Text.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Mount type <c>aws-sm</c>: the name inside the mount is the AWS secret name (it may contain '/').
/// A SecretString holding a JSON object becomes the data map (non-string members as their JSON text);
/// any other SecretString becomes the single field <c>value</c>; a SecretBinary becomes the bytes.
/// The version selector maps to VersionId, the stage selector to VersionStage.
/// Its health probe is one signed ListSecrets call asking for a single entry (see <see cref="ProbeAsync"/>).
/// AWS accepts the credentials in every region, so a mount pointed at the wrong region looks healthy and answers
/// NOT_FOUND: NOT_FOUND messages name the region and endpoint asked, and <see cref="LogVisibleSecretsAsync"/>
/// logs at start how many secrets the mount can see.
/// </summary>
public sealed partial class AwsSecretsManagerBackend(SecretsManagerClient client, string mountName, ILogger<AwsSecretsManagerBackend> logger, string region = "")
    : ISecretBatchReading, ISecretListing, ISecretVersionProbe, ISecretWriter, ISecretStaging, IBackendHealthProbe
{
    /// <summary>ListSecrets calls the start-up count makes at most (so at most this many hundred secrets are counted).</summary>
    private const int MaxCountCalls = 10;

    /// <summary>The field a non-JSON SecretString is returned under.</summary>
    public const string PlainStringField = "value";

    /// <summary>ListSecrets returns at most this many entries per call.</summary>
    private const int MaxListResults = 100;

    /// <summary>ListSecrets calls one ListAsync may make to fill a page after client-side filtering.</summary>
    private const int MaxListCallsPerPage = 10;

    public async Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        ValidateSelector(selector);
        GetSecretValueResponse response;
        try
        {
            response = await client.GetSecretValueAsync(new GetSecretValueRequest
            {
                SecretId = name,
                VersionId = selector.Version,
                VersionStage = selector.Stage,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
        return ToSecretValue(response);
    }

    /// <summary>The VersionId staged AWSCURRENT, from DescribeSecret's VersionIdsToStages (the watch path polls this); null when none is.</summary>
    public async Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken)
    {
        DescribeSecretResponse response;
        try
        {
            response = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = name }, cancellationToken).ConfigureAwait(false);
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
        return response.VersionIdsToStages?.FirstOrDefault(v => v.Value.Contains("AWSCURRENT", StringComparer.Ordinal)).Key;
    }

    public async Task<IReadOnlyList<SecretReadResult>> GetManyAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        var results = new SecretReadResult[names.Count];
        var offset = 0;
        foreach (var chunk in names.Chunk(SecretsManagerClient.MaxBatchIds))
        {
            try
            {
                var response = await client.BatchGetSecretValueAsync(chunk, cancellationToken).ConfigureAwait(false);
                var values = new Dictionary<string, GetSecretValueResponse>(StringComparer.Ordinal);
                foreach (var value in response.SecretValues ?? [])
                {
                    if (value.Name is { } valueName)
                    {
                        values[valueName] = value;
                    }
                }
                var errors = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var error in response.Errors ?? [])
                {
                    if (error.SecretId is { } id)
                    {
                        errors[id] = SecretsManagerErrors.NormalizeErrorType(error.ErrorCode) ?? "UnrecognizedError";
                    }
                }
                for (var i = 0; i < chunk.Length; i++)
                {
                    results[offset + i] = values.TryGetValue(chunk[i], out var value)
                        ? SecretReadResult.Success(ToSecretValue(value))
                        : SecretReadResult.Failure(errors.TryGetValue(chunk[i], out var code)
                            ? WithLocation(SecretsManagerErrors.ToBrokerException(new SecretsManagerException("BatchGetSecretValue", code, null)))
                            : new BrokerException(BrokerErrorKind.Unavailable, "AWS Secrets Manager returned no result for this secret in a batch read"));
                }
            }
            catch (SecretsManagerException ex)
            {
                // The whole call failed: every name of this chunk gets the failure; other chunks still count.
                var failure = Failed(ex);
                for (var i = 0; i < chunk.Length; i++)
                {
                    results[offset + i] = SecretReadResult.Failure(failure);
                }
            }
            offset += chunk.Length;
        }
        return results;
    }

    public async Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken)
    {
        var folderPrefix = folder.Length == 0 ? "" : folder + "/";
        List<SecretsManagerFilter>? filters = folderPrefix.Length == 0 ? null : [new SecretsManagerFilter { Key = "name", Values = [folderPrefix] }];
        var entries = new List<SecretListingEntry>(Math.Min(pageSize, MaxListResults));
        var nextToken = continuation;
        // AWS documents the name filter as a case-sensitive prefix match (API reference, Filter), which is
        // exactly the folder; names are still checked here so an endpoint that filters differently cannot put
        // another folder's secrets in a listing authorized for this one. Each call asks only for what the page
        // still lacks, so NextToken never skips an entry.
        for (var calls = 0; calls < MaxListCallsPerPage && entries.Count < pageSize; calls++)
        {
            ListSecretsResponse response;
            try
            {
                response = await client.ListSecretsAsync(new ListSecretsRequest
                {
                    Filters = filters,
                    MaxResults = Math.Min(pageSize - entries.Count, MaxListResults),
                    NextToken = nextToken,
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (SecretsManagerException ex)
            {
                if (ex.ErrorCode == "InvalidNextTokenException")
                {
                    BrokerException.ThrowInvalidArgument("page_token is no longer valid for this listing; start again without it");
                }
                throw Failed(ex);
            }
            foreach (var secret in response.SecretList ?? [])
            {
                if (secret.Name is not { } name || !name.StartsWith(folderPrefix, StringComparison.Ordinal) || LogicalPath.Validate(name) is not null)
                {
                    continue;
                }
                var current = secret.SecretVersionsToStages?.FirstOrDefault(p => p.Value.Contains("AWSCURRENT")).Key;
                entries.Add(new SecretListingEntry(name, current, ToTime(secret.LastChangedDate ?? secret.CreatedDate)));
            }
            nextToken = string.IsNullOrEmpty(response.NextToken) ? null : response.NextToken;
            if (nextToken is null)
            {
                break;
            }
        }
        return new SecretListingPage(entries, nextToken);
    }

    /// <summary>
    /// Readiness probe: one signed ListSecrets call with MaxResults = 1 (no filter). It reads no secret
    /// value and its answer (the one entry's metadata) is dropped. Cancellation by the caller propagates.
    /// </summary>
    public async Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await client.ListSecretsAsync(new ListSecretsRequest { MaxResults = 1 }, cancellationToken).ConfigureAwait(false);
            return BackendProbeResult.Up("AWS Secrets Manager answered ListSecrets");
        }
        catch (SecretsManagerException ex)
        {
            return ProbeResultFor(ex);
        }
    }

    /// <summary>
    /// Judges a failed probe call. AccessDenied is up: the request was signed with credentials AWS
    /// accepted and the service answered; the role may simply not list. Refused credentials, throttling
    /// or server errors that outlasted the retries, timeouts and an unreachable endpoint are down.
    /// Descriptions hold only AWS's error type (an identifier) or the HTTP status, never a secret name.
    /// </summary>
    public static BackendProbeResult ProbeResultFor(SecretsManagerException exception)
    {
        var code = exception.ErrorCode;
        return code switch
        {
            "AccessDeniedException" or "AccessDenied" =>
                BackendProbeResult.Up($"reachable; ListSecrets not permitted ({code}), the credentials were accepted"),
            "UnrecognizedClientException" or "InvalidSignatureException" or "IncompleteSignature" or "ExpiredTokenException"
                or "ExpiredToken" or "InvalidClientTokenId" or "MissingAuthenticationToken" or "SignatureDoesNotMatch" or "AuthFailure" =>
                BackendProbeResult.Down($"AWS rejected the broker's credentials ({code})"),
            _ when SecretsManagerErrors.IsThrottling(code) => BackendProbeResult.Down($"AWS Secrets Manager kept throttling ListSecrets ({code})"),
            "Timeout" => BackendProbeResult.Down("AWS Secrets Manager did not answer ListSecrets in time"),
            "Transport" => BackendProbeResult.Down("the AWS Secrets Manager endpoint could not be reached"),
            "InternalServiceError" or "InternalFailure" or "ServiceUnavailable" =>
                BackendProbeResult.Down($"AWS Secrets Manager is failing ({code}{HttpSuffix(exception)})"),
            _ when exception.HttpStatus is { } http && (int)http >= 500 =>
                BackendProbeResult.Down($"AWS Secrets Manager is failing (HTTP {(int)http})"),
            "MalformedResponse" => BackendProbeResult.Down("AWS Secrets Manager answered ListSecrets with a response the broker could not read"),
            "UnrecognizedError" => BackendProbeResult.Down(
                $"the endpoint answered HTTP {(int?)exception.HttpStatus ?? 0} without an AWS error type; check the mount's ServiceUrl"),
            _ => BackendProbeResult.Down($"ListSecrets failed ({code})"),
        };
    }

    private static string HttpSuffix(SecretsManagerException exception) =>
        exception.HttpStatus is { } http ? $", HTTP {(int)http}" : "";

    /// <summary>Turns one GetSecretValue / BatchGetSecretValue result into the broker's value.</summary>
    public static SecretValue ToSecretValue(GetSecretValueResponse response)
    {
        var version = response.VersionId ?? "";
        var created = ToTime(response.CreatedDate);
        var stages = (IReadOnlyList<string>?)response.VersionStages ?? [];
        if (response.SecretBinary is { } binary && response.SecretString is null)
        {
            return new SecretValue { Version = version, CreatedAt = created, Binary = binary, Stages = stages };
        }
        return new SecretValue { Version = version, CreatedAt = created, Data = ParseSecretString(response.SecretString ?? ""), Stages = stages };
    }

    /// <summary>A JSON object becomes its members (strings as is, anything else as JSON text); anything else one field, <c>value</c>.</summary>
    public static IReadOnlyDictionary<string, string> ParseSecretString(string secretString)
    {
        var trimmed = secretString.AsSpan().TrimStart();
        if (!trimmed.IsEmpty && trimmed[0] == '{')
        {
            try
            {
                using var document = JsonDocument.Parse(secretString);
                if (document.RootElement.ValueKind == JsonValueKind.Object)
                {
                    var data = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var property in document.RootElement.EnumerateObject())
                    {
                        data[property.Name] = property.Value.ValueKind == JsonValueKind.String
                            ? property.Value.GetString()!
                            : property.Value.GetRawText();
                    }
                    return data;
                }
            }
            catch (JsonException)
            {
                // Not JSON after all: served as a plain string below. The exception is dropped (it can quote the value).
            }
        }
        return new Dictionary<string, string>(StringComparer.Ordinal) { [PlainStringField] = secretString };
    }

    private static void ValidateSelector(VersionSelector selector)
    {
        // AWS: VersionId is 32 to 64 characters, VersionStage 1 to 256.
        if (selector.Version is { } version && (version.Length is < 32 or > 64 || !version.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
        {
            BrokerException.ThrowInvalidArgument("version must be an AWS VersionId (32 to 64 letters, digits or '-') on aws-sm mounts");
        }
        if (selector.Stage is { } stage && (stage.Length is < 1 or > 256 || stage.Any(char.IsControl)))
        {
            BrokerException.ThrowInvalidArgument("stage must be 1 to 256 printable characters (for example AWSCURRENT or AWSPREVIOUS)");
        }
    }

    private static DateTimeOffset? ToTime(double? epochSeconds) =>
        epochSeconds is { } seconds && double.IsFinite(seconds) ? DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(seconds * 1000)) : null;

    private BrokerException Failed(SecretsManagerException exception)
    {
        var mapped = SecretsManagerErrors.ToBrokerException(exception);
        if (mapped.Kind is BrokerErrorKind.Unavailable or BrokerErrorKind.ResourceExhausted or BrokerErrorKind.PermissionDenied)
        {
            LogCallFailed(mountName, exception.Operation, exception.ErrorCode, (int?)exception.HttpStatus ?? 0);
        }
        return WithLocation(mapped);
    }

    private string Endpoint => client.Endpoint.GetLeftPart(UriPartial.Authority);

    /// <summary>NOT_FOUND names where the broker looked (configuration, never the secret name): a wrong Region is the usual cause.</summary>
    private BrokerException WithLocation(BrokerException mapped) => mapped.Kind == BrokerErrorKind.NotFound
        ? new BrokerException(BrokerErrorKind.NotFound, $"{mapped.Message} (region {region}, endpoint {Endpoint})", mapped.InnerException)
        : mapped;

    /// <summary>
    /// Logs how many secrets this mount can list (ListSecrets, at most <see cref="MaxCountCalls"/> calls of 100), with its
    /// region and endpoint; none is a warning, as it usually means a wrong Region. Names are not logged.
    /// </summary>
    public async Task LogVisibleSecretsAsync(CancellationToken cancellationToken)
    {
        var count = 0;
        string? nextToken = null;
        try
        {
            for (var calls = 0; calls < MaxCountCalls; calls++)
            {
                var response = await client.ListSecretsAsync(new ListSecretsRequest { MaxResults = MaxListResults, NextToken = nextToken }, cancellationToken)
                    .ConfigureAwait(false);
                count += response.SecretList?.Count ?? 0;
                nextToken = string.IsNullOrEmpty(response.NextToken) ? null : response.NextToken;
                if (nextToken is null)
                {
                    break;
                }
            }
        }
        catch (SecretsManagerException ex)
        {
            LogVisibleUnknown(mountName, region, Endpoint, ex.ErrorCode);
            return;
        }
        catch (BrokerException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // No credentials, an unreadable credential file: the probe and the first read report it too.
            LogVisibleUnknown(mountName, region, Endpoint, ex.Kind.Name());
            return;
        }
        if (count == 0)
        {
            LogNoneVisible(mountName, region, Endpoint);
            return;
        }
        LogVisible(mountName, nextToken is null ? count.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{count}+", region, Endpoint);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "aws-sm mount {Mount}: {Count} secrets visible in region {Region} at {Endpoint}")]
    private partial void LogVisible(string mount, string count, string region, string endpoint);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "aws-sm mount {Mount}: no secrets visible in region {Region} at {Endpoint}; if the mount should have secrets, check its Region and ServiceUrl")]
    private partial void LogNoneVisible(string mount, string region, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "aws-sm mount {Mount}: could not count the secrets visible in region {Region} at {Endpoint} (ListSecrets: {ErrorCode})")]
    private partial void LogVisibleUnknown(string mount, string region, string endpoint, string errorCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "aws-sm mount {Mount}: {Operation} failed with {ErrorCode} (HTTP {HttpStatus})")]
    private partial void LogCallFailed(string mount, string operation, string errorCode, int httpStatus);
}
