namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// One set of AWS credentials as the signer needs them. <see cref="ToString"/> never prints the keys,
/// so an accidental log line or exception message cannot leak them.
/// </summary>
public sealed class AwsCredentials
{
    public AwsCredentials(string accessKeyId, string secretAccessKey, string? sessionToken = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(accessKeyId);
        ArgumentException.ThrowIfNullOrEmpty(secretAccessKey);
        AccessKeyId = accessKeyId;
        SecretAccessKey = secretAccessKey;
        SessionToken = string.IsNullOrEmpty(sessionToken) ? null : sessionToken;
    }

    public string AccessKeyId { get; }

    public string SecretAccessKey { get; }

    /// <summary>Session token of temporary credentials (STS, IRSA, ECS, IMDS); null for long-term keys.</summary>
    public string? SessionToken { get; }

    public override string ToString() => "AwsCredentials(redacted)";
}
