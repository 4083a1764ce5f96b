namespace SecretsBroker.Broker.Backends.Aws;

// Writes (botocore data/secretsmanager/2017-10-17/service-2.json). ClientRequestToken is an idempotencyToken member,
// 32 to 64 characters, and becomes the new VersionId. AWS's rules for it (PutSecretValueRequest.ClientRequestToken):
// a token not yet used creates a version; a token whose version holds the same SecretString/SecretBinary is ignored
// (the call is idempotent); a token whose version holds another value fails (ResourceExistsException), since a version
// cannot be modified. VersionStages (1 to 20 labels): when omitted AWS moves AWSCURRENT to the new version (and
// AWSPREVIOUS to the one it left); a label given moves from any other version to this one.
public sealed partial class SecretsManagerClient
{
    /// <summary>Shortest and longest ClientRequestToken the service model accepts.</summary>
    public const int MinClientRequestTokenLength = 32, MaxClientRequestTokenLength = 64;

    /// <summary>
    /// PutSecretValue: a new version of an existing secret holding <paramref name="payload"/>, with
    /// <paramref name="clientRequestToken"/> as its VersionId (retries of one logical write must pass the same token),
    /// and <paramref name="versionStages"/> (null: AWS makes it AWSCURRENT).
    /// </summary>
    public Task<SecretWriteResponse> PutSecretValueAsync(string secretId, SecretPayload payload, string clientRequestToken,
        IReadOnlyList<string>? versionStages, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(secretId);
        if (clientRequestToken.Length is < MinClientRequestTokenLength or > MaxClientRequestTokenLength)
        {
            throw new ArgumentException($"ClientRequestToken must be {MinClientRequestTokenLength} to {MaxClientRequestTokenLength} characters", nameof(clientRequestToken));
        }
        if (versionStages is { Count: 0 or > 20 })
        {
            throw new ArgumentException("VersionStages takes 1 to 20 labels, or null for AWS's default (AWSCURRENT)", nameof(versionStages));
        }
        return PutSecretValueAsync(new PutSecretValueRequest
        {
            SecretId = secretId,
            ClientRequestToken = clientRequestToken,
            SecretString = payload.Text,
            SecretBinary = payload.Binary,
            VersionStages = versionStages is null ? null : [.. versionStages],
        }, cancellationToken);
    }


    public Task<SecretWriteResponse> CreateSecretAsync(CreateSecretRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("CreateSecret", request with { ClientRequestToken = request.ClientRequestToken ?? NewClientRequestToken() },
            SecretsManagerJsonContext.Default.CreateSecretRequest, SecretsManagerJsonContext.Default.SecretWriteResponse, cancellationToken);

    public Task<SecretWriteResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("PutSecretValue", request with { ClientRequestToken = request.ClientRequestToken ?? NewClientRequestToken() },
            SecretsManagerJsonContext.Default.PutSecretValueRequest, SecretsManagerJsonContext.Default.SecretWriteResponse, cancellationToken);

    public Task<SecretWriteResponse> UpdateSecretAsync(UpdateSecretRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("UpdateSecret", request with { ClientRequestToken = request.ClientRequestToken ?? NewClientRequestToken() },
            SecretsManagerJsonContext.Default.UpdateSecretRequest, SecretsManagerJsonContext.Default.SecretWriteResponse, cancellationToken);

    public Task<SecretWriteResponse> RotateSecretAsync(RotateSecretRequest request, CancellationToken cancellationToken = default) =>
        SendAsync("RotateSecret", request with { ClientRequestToken = request.ClientRequestToken ?? NewClientRequestToken() },
            SecretsManagerJsonContext.Default.RotateSecretRequest, SecretsManagerJsonContext.Default.SecretWriteResponse, cancellationToken);

    /// <summary>A version 4 UUID in its 36-character form, as botocore's str(uuid.uuid4()) (AWS accepts 32 to 64 characters).</summary>
    public static string NewClientRequestToken() => Guid.NewGuid().ToString("D");
}

/// <summary>A Secrets Manager value: exactly one of SecretString (1 to 65536 characters) and SecretBinary (1 to 65536 bytes).</summary>
public sealed record SecretPayload
{
    public const int MaxLength = 65536;

    private SecretPayload(string? text, byte[]? binary)
    {
        Text = text;
        Binary = binary;
    }

    public string? Text { get; }

    public byte[]? Binary { get; }

    public static SecretPayload FromString(string value) =>
        value.Length is 0 or > MaxLength ? throw new ArgumentException($"SecretString takes 1 to {MaxLength} characters", nameof(value)) : new(value, null);

    public static SecretPayload FromBinary(byte[] value) =>
        value.Length is 0 or > MaxLength ? throw new ArgumentException($"SecretBinary takes 1 to {MaxLength} bytes", nameof(value)) : new(null, value);

    public override string ToString() => Text is not null ? $"SecretPayload {{ Text, {Text.Length} chars }}" : $"SecretPayload {{ Binary, {Binary!.Length} bytes }}";
}
