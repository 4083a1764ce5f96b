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

    /// <summary>Endpoint override (moto, LocalStack, a VPC endpoint). Default: https://secretsmanager.{Region}.amazonaws.com.</summary>
    public string? ServiceUrl { get; set; }

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
