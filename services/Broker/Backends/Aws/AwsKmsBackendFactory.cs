using Amazon;
using Amazon.KeyManagementService;
using Amazon.Runtime;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Mount type <c>aws-kms</c>. Settings as an <c>aws-sm</c> mount's (<see cref="AwsSecretsManagerOptions"/>): <c>Region</c>
/// (or AWS_REGION / AWS_DEFAULT_REGION), <c>ServiceUrl</c>, <c>UseFipsEndpoint</c>, <c>UseDualStackEndpoint</c>,
/// <c>CaCertificateFile</c>, <c>Profile</c>/<c>ProfilesLocation</c> or <c>AccessKeyId</c>/<c>SecretAccessKey</c>, the default
/// credential chain otherwise, <c>AttemptTimeout</c>, <c>MaxRetries</c>; plus <c>Keys:&lt;name&gt;</c> (key id, ARN or alias per
/// key name; unmapped names are <c>alias/&lt;name&gt;</c>). Without a <c>ServiceUrl</c> the SDK resolves the KMS endpoint of the
/// region (and honours AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL as the SDKs do).
/// </summary>
public sealed class AwsKmsBackendFactory(IHostEnvironment environment, AwsEnvironment awsEnvironment) : ISecretBackendFactory
{
    public string MountType => "aws-kms";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var options = new AwsSecretsManagerOptions();
        settings.Bind(options);
        var failures = new List<string>();
        if (new AwsSecretsManagerOptionsValidator().Validate(mount.Prefix, options) is { Failed: true } result)
        {
            failures.AddRange(result.Failures);
        }
        var region = string.IsNullOrWhiteSpace(options.Region)
            ? awsEnvironment.Variable("AWS_REGION") ?? awsEnvironment.Variable("AWS_DEFAULT_REGION")
            : options.Region.Trim();
        if (string.IsNullOrWhiteSpace(region))
        {
            failures.Add("'Region' is required (or set AWS_REGION / AWS_DEFAULT_REGION)");
        }
        if (!string.IsNullOrEmpty(options.AccessKeyId) != !string.IsNullOrEmpty(options.SecretAccessKey))
        {
            failures.Add("'AccessKeyId' and 'SecretAccessKey' go together: give both or neither");
        }
        if (!string.IsNullOrWhiteSpace(options.ServiceUrl) && (!Uri.TryCreate(options.ServiceUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https")))
        {
            failures.Add("'ServiceUrl' must be an absolute http(s) URL, for example http://127.0.0.1:5000");
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
        var keyIds = settings.GetSection("Keys").GetChildren().ToDictionary(k => k.Key, k => k.Value ?? "", StringComparer.Ordinal);
        if (keyIds.Values.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add("every entry of 'Keys' must name a KMS key id, ARN or alias");
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(mount.Prefix, typeof(AwsSecretsManagerOptions), failures);
        }

        var config = new AmazonKeyManagementServiceConfig
        {
            Timeout = options.AttemptTimeout,
            MaxErrorRetry = options.MaxRetries,
            UseFIPSEndpoint = options.UseFipsEndpoint ?? false,
            UseDualstackEndpoint = options.UseDualStackEndpoint ?? false,
        };
        if (!string.IsNullOrWhiteSpace(options.ServiceUrl))
        {
            config.ServiceURL = options.ServiceUrl.Trim();
            config.AuthenticationRegion = region;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }
        if (caValidator is not null)
        {
            config.HttpClientFactory = new CustomCaHttpClientFactory(caValidator);
        }
        IAwsCredentialSource source = !string.IsNullOrEmpty(options.AccessKeyId)
            ? new StaticAwsCredentialSource(new AwsCredentials(options.AccessKeyId, options.SecretAccessKey!, options.SessionToken))
            : !string.IsNullOrEmpty(options.Profile)
                ? SdkAwsCredentialSource.FromProfile(options.Profile,
                    string.IsNullOrWhiteSpace(options.ProfilesLocation) ? null : Path.Combine(environment.ContentRootPath, options.ProfilesLocation))
                : SdkAwsCredentialSource.DefaultChain();
        return new AwsKmsBackend(new AmazonKeyManagementServiceClient(new CredentialSourceAdapter(source), config), keyIds);
    }

    /// <summary>HTTP clients that trust only the mount's CA file (as aws-sm mounts do with CaCertificateFile).</summary>
    private sealed class CustomCaHttpClientFactory(CustomCaValidator validator) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) => new(validator.ApplyTo(new SocketsHttpHandler()));
    }
}
