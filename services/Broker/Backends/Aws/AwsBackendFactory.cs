using Amazon.Runtime;
using Amazon;
using Amazon.Runtime.CredentialManagement;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Mount type <c>aws-sm</c> (AWS Secrets Manager). Settings are the mount's own section, bound to
/// <see cref="AwsSecretsManagerOptions"/> and validated here, so a bad mount stops the broker at start.
/// Owns the HTTP clients it creates and disposes them with the host.
/// </summary>
public sealed partial class AwsBackendFactory(IHostEnvironment environment, ILoggerFactory loggerFactory, TimeProvider timeProvider, AwsEnvironment awsEnvironment)
    : ISecretBackendFactory, IDisposable
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
        var warnings = new List<string>();
        if (new AwsSecretsManagerOptionsValidator().Validate(mount.Prefix, options) is { Failed: true } result)
        {
            failures.AddRange(result.Failures);
        }

        var profilesLocation = string.IsNullOrWhiteSpace(options.ProfilesLocation) ? null : Path.Combine(environment.ContentRootPath, options.ProfilesLocation);
        var profile = ReadProfile(options.Profile ?? awsEnvironment.Variable("AWS_PROFILE") ?? "default", profilesLocation);
        var region = string.IsNullOrWhiteSpace(options.Region) ? DetectRegion(profile) : options.Region.Trim();
        AwsEndpoint? endpoint = null;
        if (region is null)
        {
            failures.Add("'Region' is required (or set AWS_REGION / AWS_DEFAULT_REGION, or a region in the AWS profile)");
        }
        else if (!IsRegionName(region))
        {
            failures.Add("'Region' must look like an AWS region name, for example eu-west-1");
        }
        else
        {
            endpoint = AwsEndpointResolver.Resolve(options, region, awsEnvironment, profile, failures, warnings);
        }

        CustomCaValidator? caValidator = null;
        if (!string.IsNullOrWhiteSpace(options.CaCertificateFile))
        {
            try
            {
                caValidator = CustomCaValidator.FromPemFile(Path.Combine(environment.ContentRootPath, options.CaCertificateFile), "'CaCertificateFile'");
            }
            catch (InvalidOperationException ex)
            {
                failures.Add(ex.Message);
            }
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
                ? SdkAwsCredentialSource.FromProfile(options.Profile, profilesLocation)
                : SdkAwsCredentialSource.DefaultChain();

        var backendLogger = loggerFactory.CreateLogger<AwsSecretsManagerBackend>();
        var mountName = mount.Prefix;
        var httpClient = SecretsManagerHttp.CreateClient(options, region!, credentials, timeProvider,
            (attempt, reason, delay) => LogRetry(mountName, attempt, reason, (long)delay.TotalMilliseconds), caValidator: caValidator);
        lock (_owned)
        {
            _owned.Add(httpClient);
            if (credentials is IDisposable disposable)
            {
                _owned.Add(disposable);
            }
        }
        foreach (var warning in warnings)
        {
            LogConfigurationWarning(mountName, warning);
        }
        LogMounted(mountName, region!, endpoint!.Url.GetLeftPart(UriPartial.Authority), endpoint.Source, credentials.Kind,
            caValidator is null ? "the machine's trust store" : "CaCertificateFile");
        return new AwsSecretsManagerBackend(new SecretsManagerClient(httpClient, endpoint.Url), mountName, backendLogger, region!);
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

    /// <summary>AWS_REGION, AWS_DEFAULT_REGION, then the profile's region (as the SDKs do, without instance metadata: it could stall the start).</summary>
    private string? DetectRegion(CredentialProfile? profile)
    {
        foreach (var variable in (string[])["AWS_REGION", "AWS_DEFAULT_REGION"])
        {
            if (awsEnvironment.Variable(variable) is { Length: > 0 } value)
            {
                return value.Trim();
            }
        }
        return profile?.Region?.SystemName;
    }

    private CredentialProfile? ReadProfile(string name, string? profilesLocation)
    {
        try
        {
            return awsEnvironment.Profile(name, profilesLocation);
        }
        catch (Exception ex) when (ex is AmazonClientException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return null; // an unreadable file: the credential chain reports it on first use
        }
    }

    private static bool IsRegionName(string region) =>
        region.Length is >= 4 and <= 32 && region.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    [LoggerMessage(Level = LogLevel.Information,
        Message = "aws-sm mount {Mount}: region {Region}, endpoint {Endpoint} (from {EndpointSource}), credentials from {CredentialSource}, TLS trust from {TlsTrust}")]
    private partial void LogMounted(string mount, string region, string endpoint, string endpointSource, string credentialSource, string tlsTrust);

    [LoggerMessage(Level = LogLevel.Warning, Message = "aws-sm mount {Mount}: {Warning}")]
    private partial void LogConfigurationWarning(string mount, string warning);

    [LoggerMessage(Level = LogLevel.Warning, Message = "aws-sm mount {Mount}: retry {Attempt} after {Reason}, waiting {DelayMs} ms")]
    private partial void LogRetry(string mount, int attempt, string reason, long delayMs);
}
