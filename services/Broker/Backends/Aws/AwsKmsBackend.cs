using System.Net;
using Amazon.KeyManagementService;
using Amazon.KeyManagementService.Model;
using Amazon.Runtime;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>
/// Mount type <c>aws-kms</c>: AWS KMS holds the keys (AWSSDK.KeyManagementService). A key name inside the mount is the alias
/// <c>alias/&lt;name&gt;</c> unless the mount maps it (<c>Keys:&lt;name&gt;</c>: key id, ARN or alias). The caller's context,
/// plus the broker's <c>secretsbroker:kind</c> entry, is the KMS EncryptionContext (AAD inside KMS). The store ciphertext
/// is KMS's CiphertextBlob; KMS keeps the key version (backing key) inside it, so the broker's key version is empty.
/// Decrypt and ReEncrypt name the expected key (KeyId / SourceKeyId), so a blob of another key is refused by KMS.
/// </summary>
public sealed class AwsKmsBackend(IAmazonKeyManagementService kms, IReadOnlyDictionary<string, string> keyIds) : IKeyStore, IDisposable
{
    private const int DataKeyBytes = 32;

    public async Task<StoreCiphertext> EncryptAsync(string key, KeyStoreInput input, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        var response = await CallAsync(() => kms.EncryptAsync(new EncryptRequest
        {
            KeyId = KeyId(key),
            Plaintext = new MemoryStream(plaintext.ToArray(), writable: false),
            EncryptionContext = new Dictionary<string, string>(input.Context),
        }, cancellationToken)).ConfigureAwait(false);
        return new StoreCiphertext("", response.CiphertextBlob.ToArray());
    }

    public async Task<StorePlaintext> DecryptAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken)
    {
        var response = await CallAsync(() => kms.DecryptAsync(new DecryptRequest
        {
            KeyId = KeyId(key),
            CiphertextBlob = new MemoryStream(ciphertext.Blob, writable: false),
            EncryptionContext = new Dictionary<string, string>(input.Context),
        }, cancellationToken)).ConfigureAwait(false);
        return new StorePlaintext("", response.Plaintext.ToArray());
    }

    public async Task<StoreDataKey> GenerateDataKeyAsync(string key, KeyStoreInput input, CancellationToken cancellationToken)
    {
        var response = await CallAsync(() => kms.GenerateDataKeyAsync(new GenerateDataKeyRequest
        {
            KeyId = KeyId(key),
            KeySpec = DataKeySpec.AES_256,
            EncryptionContext = new Dictionary<string, string>(input.Context),
        }, cancellationToken)).ConfigureAwait(false);
        var plaintextKey = response.Plaintext.ToArray();
        if (plaintextKey.Length != DataKeyBytes)
        {
            BrokerException.ThrowUnavailable("AWS KMS returned a data key that is not 256 bits");
        }
        return new StoreDataKey(plaintextKey, new StoreCiphertext("", response.CiphertextBlob.ToArray()));
    }

    public async Task<StoreCiphertext> RewrapAsync(string key, KeyStoreInput input, StoreCiphertext ciphertext, CancellationToken cancellationToken)
    {
        var keyId = KeyId(key);
        var response = await CallAsync(() => kms.ReEncryptAsync(new ReEncryptRequest
        {
            CiphertextBlob = new MemoryStream(ciphertext.Blob, writable: false),
            SourceKeyId = keyId,
            SourceEncryptionContext = new Dictionary<string, string>(input.Context),
            DestinationKeyId = keyId,
            DestinationEncryptionContext = new Dictionary<string, string>(input.Context),
        }, cancellationToken)).ConfigureAwait(false);
        return new StoreCiphertext("", response.CiphertextBlob.ToArray());
    }

    public void Dispose() => kms.Dispose();

    private string KeyId(string key) => keyIds.TryGetValue(key, out var mapped) ? mapped : "alias/" + key;

    /// <summary>
    /// KMS errors as clear statuses (error codes from the KMS API reference, "Errors" of Encrypt/Decrypt/GenerateDataKey/
    /// ReEncrypt; throttling codes as botocore's retryhandler treats them). KMS's messages can name keys: never passed on.
    /// </summary>
    private static async Task<T> CallAsync<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonServiceException ex)
        {
            throw Map(ex);
        }
        catch (AmazonClientException ex)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "AWS KMS is unreachable", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "AWS KMS is unreachable", ex);
        }
    }

    internal static BrokerException Map(AmazonServiceException ex) => ex switch
    {
        InvalidCiphertextException => new(BrokerErrorKind.InvalidArgument,
            "the ciphertext does not decrypt under its key with this context (wrong context, or the ciphertext was altered)", ex),
        IncorrectKeyException => new(BrokerErrorKind.InvalidArgument, "the ciphertext was made under another KMS key", ex),
        NotFoundException => new(BrokerErrorKind.NotFound, "key not found", ex),
        DisabledException => new(BrokerErrorKind.FailedPrecondition, "the KMS key is disabled", ex),
        KMSInvalidStateException => new(BrokerErrorKind.FailedPrecondition, "the KMS key is not in a state that allows this (pending deletion or import)", ex),
        InvalidKeyUsageException => new(BrokerErrorKind.FailedPrecondition, "the KMS key is not a symmetric encryption key", ex),
        KeyUnavailableException or DependencyTimeoutException or KMSInternalException =>
            new(BrokerErrorKind.Unavailable, "AWS KMS is unavailable; retry later", ex),
        _ when ex.ErrorCode is "AccessDeniedException" || ex.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized =>
            new(BrokerErrorKind.PermissionDenied, "AWS KMS denied the broker this operation on the key", ex),
        _ when ex.ErrorCode is "ThrottlingException" or "LimitExceededException" or "RequestLimitExceeded" || ex.StatusCode == HttpStatusCode.TooManyRequests =>
            new(BrokerErrorKind.Unavailable, "AWS KMS is throttling requests; retry later", ex),
        _ when ex.ErrorCode is "ValidationException" || ex.StatusCode == HttpStatusCode.BadRequest =>
            new(BrokerErrorKind.InvalidArgument, "AWS KMS rejected the request as invalid", ex),
        _ => new(BrokerErrorKind.Unavailable, $"AWS KMS failed to answer (HTTP {(int)ex.StatusCode})", ex),
    };
}

/// <summary>The broker's credential chain (<see cref="IAwsCredentialSource"/>, as aws-sm mounts use it) as SDK credentials.</summary>
internal sealed class CredentialSourceAdapter(IAwsCredentialSource source) : AWSCredentials
{
    public override ImmutableCredentials GetCredentials() => GetCredentialsAsync().GetAwaiter().GetResult();

    public override async Task<ImmutableCredentials> GetCredentialsAsync()
    {
        var credentials = await source.GetCredentialsAsync(CancellationToken.None).ConfigureAwait(false);
        return new ImmutableCredentials(credentials.AccessKeyId, credentials.SecretAccessKey, credentials.SessionToken);
    }
}
