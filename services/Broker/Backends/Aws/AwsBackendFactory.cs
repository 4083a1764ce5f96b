using Amazon.Runtime;
using Amazon;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Mount type <c>aws-sm</c> (AWS Secrets Manager). Settings are the mount's own section, bound to
/// <see cref="AwsSecretsManagerOptions"/> and validated here, so a bad mount stops the broker at start.
/// Owns the HTTP clients it creates and disposes them with the host.
/// </summary>
public sealed partial class AwsBackendFactory(IHostEnvironment environment, ILoggerFactory loggerFactory, TimeProvider timeProvider) : ISecretBackendFactory, IDisposable
{
    public const string MountTypeName = "aws-sm";

    private readonly ILogger _logger = loggerFactory.CreateLogger<AwsBackendFactory>();
    private readonly List<IDisposable> _owned = [];

    public string MountType => MountTypeName;

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var options = new AwsSecretsManagerOptions();
        settings.Bind(options);
        var failures = new List<string>();
        if (new AwsSecretsManagerOptionsValidator().Validate(mount.Prefix, options) is { Failed: true } result)
        {
            failures.AddRange(result.Failures);
        }

        var region = string.IsNullOrWhiteSpace(options.Region) ? DetectRegion() : options.Region.Trim();
        if (region is null)
        {
            failures.Add("'Region' is required (or set AWS_REGION / AWS_DEFAULT_REGION, or a region in the AWS profile)");
        }
        else if (!IsRegionName(region))
        {
            failures.Add("'Region' must look like an AWS region name, for example eu-west-1");
        }

        Uri? endpoint = null;
        if (!string.IsNullOrWhiteSpace(options.ServiceUrl))
        {
            if (!Uri.TryCreate(options.ServiceUrl, UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("http" or "https")
                || (endpoint.AbsolutePath != "/" && endpoint.AbsolutePath.Length > 0) || !string.IsNullOrEmpty(endpoint.Query))
            {
                failures.Add("'ServiceUrl' must be an absolute http(s) URL without a path or query, for example http://127.0.0.1:5000");
            }
        }
        else if (region is not null)
        {
            endpoint = new Uri($"https://secretsmanager.{region}.{(region.StartsWith("cn-", StringComparison.Ordinal) ? "amazonaws.com.cn" : "amazonaws.com")}/");
        }

        var hasKey = !string.IsNullOrEmpty(options.AccessKeyId);
        var hasSecret = !string.IsNullOrEmpty(options.SecretAccessKey);
        if (hasKey != hasSecret)
        {
            failures.Add("'AccessKeyId' and 'SecretAccessKey' go together: give both or neither");
        }
        if (hasKey && !string.IsNullOrEmpty(options.Profile))
        {
            failures.Add("give either fixed keys ('AccessKeyId'/'SecretAccessKey') or 'Profile', not both");
        }
        if (options.AttemptTimeout > options.TotalTimeout)
        {
            failures.Add("'AttemptTimeout' must not be longer than 'TotalTimeout'");
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(mount.Prefix, typeof(AwsSecretsManagerOptions), failures);
        }

        IAwsCredentialSource credentials = hasKey
            ? new StaticAwsCredentialSource(new AwsCredentials(options.AccessKeyId!, options.SecretAccessKey!, options.SessionToken))
            : !string.IsNullOrEmpty(options.Profile)
                ? SdkAwsCredentialSource.FromProfile(options.Profile,
                    string.IsNullOrWhiteSpace(options.ProfilesLocation) ? null : Path.Combine(environment.ContentRootPath, options.ProfilesLocation))
                : SdkAwsCredentialSource.DefaultChain();

        var backendLogger = loggerFactory.CreateLogger<AwsSecretsManagerBackend>();
        var mountName = mount.Prefix;
        var httpClient = SecretsManagerHttp.CreateClient(options, region!, credentials, timeProvider,
            (attempt, reason, delay) => LogRetry(mountName, attempt, reason, (long)delay.TotalMilliseconds));
        lock (_owned)
        {
            _owned.Add(httpClient);
            if (credentials is IDisposable disposable)
            {
                _owned.Add(disposable);
            }
        }
        LogMounted(mountName, region!, endpoint!.GetLeftPart(UriPartial.Authority), credentials.Kind);
        return new AwsSecretsManagerBackend(new SecretsManagerClient(httpClient, endpoint), mountName, backendLogger);
    }

    public void Dispose()
    {
        lock (_owned)
        {
            foreach (var item in _owned)
            {
                item.Dispose();
            }
            _owned.Clear();
        }
    }

    private static string? DetectRegion()
    {
        foreach (var variable in (string[])["AWS_REGION", "AWS_DEFAULT_REGION"])
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
            {
                return value.Trim();
            }
        }
        try
        {
            // Environment and profile only: probing instance metadata here could stall the start for seconds.
            return FallbackRegionFactory.GetRegionEndpoint(includeInstanceMetadata: false)?.SystemName;
        }
        catch (AmazonClientException)
        {
            return null;
        }
    }

    private static bool IsRegionName(string region) =>
        region.Length is >= 4 and <= 32 && region.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    [LoggerMessage(Level = LogLevel.Information, Message = "aws-sm mount {Mount}: region {Region}, endpoint {Endpoint}, credentials from {CredentialSource}")]
    private partial void LogMounted(string mount, string region, string endpoint, string credentialSource);

    [LoggerMessage(Level = LogLevel.Warning, Message = "aws-sm mount {Mount}: retry {Attempt} after {Reason}, waiting {DelayMs} ms")]
    private partial void LogRetry(string mount, int attempt, string reason, long delayMs);
}
