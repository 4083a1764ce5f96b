using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Settings of one <c>aws-sm</c> mount, bound from its entry under <c>Broker:Mounts</c> and validated
/// when the mount table is built (a bad mount stops the broker). See docs/aws.md.
/// </summary>
public sealed class AwsSecretsManagerOptions
{
    /// <summary>AWS region, for example <c>eu-west-1</c>. When empty: AWS_REGION / AWS_DEFAULT_REGION or the profile's region.</summary>
    public string? Region { get; set; }

    /// <summary>
    /// Endpoint override (moto, LocalStack, a VPC endpoint); wins over AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL
    /// and the profile's endpoint_url. Default: the region's endpoint in its partition (see <see cref="AwsEndpointResolver"/>).
    /// </summary>
    public string? ServiceUrl { get; set; }

    /// <summary>Use the FIPS endpoint (secretsmanager-fips.{Region}...). When unset: AWS_USE_FIPS_ENDPOINT, then the profile's use_fips_endpoint.</summary>
    public bool? UseFipsEndpoint { get; set; }

    /// <summary>Use the dual-stack endpoint. When unset: AWS_USE_DUALSTACK_ENDPOINT, then the profile's use_dualstack_endpoint.</summary>
    public bool? UseDualStackEndpoint { get; set; }

    /// <summary>
    /// PEM file of the CA(s) that issued an https endpoint's certificate (relative to the content root), checked
    /// instead of the machine's store; the server may present intermediates. See <see cref="Tls.CustomCaValidator"/>.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>Use this named profile instead of the SDK's default credential chain.</summary>
    public string? Profile { get; set; }

    /// <summary>Shared credentials file holding <see cref="Profile"/> (relative to the content root); default: the SDK's locations (~/.aws/credentials, ~/.aws/config).</summary>
    public string? ProfilesLocation { get; set; }

    /// <summary>Fixed access key id; only for local emulators. Needs <see cref="SecretAccessKey"/>.</summary>
    public string? AccessKeyId { get; set; }

    /// <summary>Fixed secret key; only for local emulators.</summary>
    public string? SecretAccessKey { get; set; }

    /// <summary>Optional session token going with the fixed keys.</summary>
    public string? SessionToken { get; set; }

    /// <summary>Time allowed for one HTTP attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time allowed for one call including its retries.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries after the first attempt on throttling, 5xx, timeouts and connection failures.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 3;

    /// <summary>Base of the exponential backoff (with jitter) between retries.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Largest HTTP response accepted, in bytes (a batch of 20 secrets of 64 KiB fits in the default).</summary>
    [Range(64 * 1024, 64 * 1024 * 1024)]
    public int MaxResponseBytes { get; set; } = 8 * 1024 * 1024;
}

[OptionsValidator]
public sealed partial class AwsSecretsManagerOptionsValidator : IValidateOptions<AwsSecretsManagerOptions>;
