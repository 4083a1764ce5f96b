using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Credentials;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>Supplies the credentials for each signed request; implementations refresh them before they expire.</summary>
public interface IAwsCredentialSource
{
    /// <summary>A short description for logs and docs ("default chain", "profile", "static"), never a key.</summary>
    string Kind { get; }

    ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken);
}

/// <summary>Fixed keys from configuration; meant for local emulators (moto, LocalStack), not for production.</summary>
public sealed class StaticAwsCredentialSource(AwsCredentials credentials) : IAwsCredentialSource
{
    public string Kind => "static";

    public ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken) => ValueTask.FromResult(credentials);
}

/// <summary>
/// Credentials from AWSSDK.Core. Either the SDK's default chain (environment variables, the shared
/// credentials/config files and their default or AWS_PROFILE profile, web identity / IRSA through
/// AWSSDK.SecurityToken, ECS container credentials, EC2 instance metadata), resolved on first use; or one
/// named profile. The SDK's credential objects cache temporary credentials and refresh them ahead of
/// their expiry, so asking on every request is cheap.
/// </summary>
public sealed class SdkAwsCredentialSource : IAwsCredentialSource, IDisposable
{
    private readonly SemaphoreSlim _resolveLock = new(1, 1);
    private AWSCredentials? _credentials;

    private SdkAwsCredentialSource(AWSCredentials? credentials, string kind)
    {
        _credentials = credentials;
        Kind = kind;
    }

    public string Kind { get; }

    /// <summary>The SDK's default chain, resolved lazily (instance metadata can take seconds to answer).</summary>
    public static SdkAwsCredentialSource DefaultChain() => new(null, "default chain");

    /// <summary>
    /// One named profile from the shared credentials/config files (<paramref name="profilesLocation"/>, or the
    /// SDK's default locations when null). Throws <see cref="InvalidOperationException"/> when it does not exist.
    /// </summary>
    public static SdkAwsCredentialSource FromProfile(string profileName, string? profilesLocation)
    {
        var chain = new CredentialProfileStoreChain(profilesLocation);
        if (!chain.TryGetAWSCredentials(profileName, out var credentials))
        {
            throw new InvalidOperationException("'Profile' names a profile that was not found in the shared credentials or config files");
        }
        return new SdkAwsCredentialSource(credentials, "profile");
    }

    public async ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken)
    {
        var credentials = _credentials ?? await ResolveChainAsync(cancellationToken).ConfigureAwait(false);
        ImmutableCredentials current;
        try
        {
            current = await credentials.GetCredentialsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AmazonClientException or AmazonServiceException or HttpRequestException or IOException or InvalidOperationException)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "AWS credentials could not be obtained or refreshed", ex);
        }
        return new AwsCredentials(current.AccessKey, current.SecretKey, current.UseToken ? current.Token : null);
    }

    public void Dispose() => _resolveLock.Dispose();

    private async Task<AWSCredentials> ResolveChainAsync(CancellationToken cancellationToken)
    {
        await _resolveLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_credentials is { } resolved)
            {
                return resolved;
            }
            try
            {
                resolved = await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AmazonClientException or AmazonServiceException or HttpRequestException or IOException or InvalidOperationException)
            {
                // Not cached: the next request walks the chain again (instance metadata may come up later).
                throw new BrokerException(BrokerErrorKind.Unavailable, "no AWS credentials were found by the default credential chain", ex);
            }
            _credentials = resolved;
            return resolved;
        }
        finally
        {
            _resolveLock.Release();
        }
    }
}
