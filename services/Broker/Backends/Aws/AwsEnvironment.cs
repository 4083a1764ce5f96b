using Amazon.Runtime.CredentialManagement;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Where AWS settings come from outside the mount's own section, as the AWS SDKs read them: environment
/// variables and a profile of the shared config/credentials files (read with AWSSDK.Core). A seam so tests
/// can give a broker its own environment without changing the test process's.
/// </summary>
public class AwsEnvironment
{
    /// <summary>The real process environment and the SDK's shared files.</summary>
    public static AwsEnvironment Process { get; } = new();

    public virtual string? Variable(string name) => Environment.GetEnvironmentVariable(name);

    /// <summary>The named profile from <paramref name="profilesLocation"/> (or the SDK's default files, which honour AWS_CONFIG_FILE); null when absent.</summary>
    public virtual CredentialProfile? Profile(string name, string? profilesLocation) =>
        new CredentialProfileStoreChain(profilesLocation).TryGetProfile(name, out var profile) ? profile : null;
}
