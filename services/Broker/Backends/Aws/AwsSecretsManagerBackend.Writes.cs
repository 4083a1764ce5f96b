using System.Text;
using System.Text.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Aws;

// Writes: PutSecretValue on an existing secret (the broker writes versions, it does not create secrets: that needs
// CreateSecret, a KMS key choice and tags, which belong to whoever provisions the secret). Fields become a JSON object
// SecretString (the shape ParseSecretString reads back), bytes a SecretBinary. IAM: secretsmanager:PutSecretValue, plus
// DescribeSecret for check-and-set and GetSecretValue for the new version's creation time.
public sealed partial class AwsSecretsManagerBackend
{
    public async Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken)
    {
        var payload = ToPayload(write);
        var token = write.IdempotencyToken ?? SecretsManagerClient.NewClientRequestToken();
        if (token.Length is < SecretsManagerClient.MinClientRequestTokenLength or > SecretsManagerClient.MaxClientRequestTokenLength)
        {
            BrokerException.ThrowInvalidArgument("the idempotency token must be 32 to 64 characters on aws-sm mounts");
        }
        if (write.Stages is { Count: 0 or > 20 } || write.Stages?.Any(s => s.Length is < 1 or > 256) == true)
        {
            BrokerException.ThrowInvalidArgument("aws-sm writes take 1 to 20 staging labels of 1 to 256 characters");
        }
        try
        {
            if (write.ExpectedVersion is { } expected)
            {
                // AWS has no check-and-set: compare AWSCURRENT first. Another writer can still slip in between this
                // DescribeSecret and the PutSecretValue below (docs/aws.md, "Writes"); the window is one round trip.
                var current = await CurrentVersionOrNullAsync(name, cancellationToken).ConfigureAwait(false);
                if (!CheckAndSet.Matches(expected, current))
                {
                    throw CheckAndSet.Mismatch(current);
                }
            }
            var written = await client.PutSecretValueAsync(name, payload, token, write.Stages, cancellationToken).ConfigureAwait(false);
            var versionId = written.VersionId ?? token;
            var created = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = name, VersionId = versionId }, cancellationToken)
                .ConfigureAwait(false);
            return new WrittenVersion(versionId, ToTime(created.CreatedDate));
        }
        catch (SecretsManagerException ex) when (ex.ErrorCode == "ResourceExistsException")
        {
            // PutSecretValueRequest.ClientRequestToken: the token's version exists with another value.
            throw new BrokerException(BrokerErrorKind.AlreadyExists,
                "AWS Secrets Manager already has a version with this idempotency token holding another value; versions cannot be changed", ex);
        }
        catch (SecretsManagerException ex)
        {
            throw Failed(ex);
        }
    }

    private async Task<string?> CurrentVersionOrNullAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = name }, cancellationToken).ConfigureAwait(false);
            return response.VersionIdsToStages?.FirstOrDefault(v => v.Value.Contains("AWSCURRENT", StringComparer.Ordinal)).Key;
        }
        catch (SecretsManagerException ex) when (ex.ErrorCode == "ResourceNotFoundException")
        {
            return null;
        }
    }

    private static SecretPayload ToPayload(SecretWrite write)
    {
        if (write.Binary is { } binary)
        {
            if (binary.Length is 0 or > SecretPayload.MaxLength)
            {
                BrokerException.ThrowInvalidArgument($"aws-sm secrets hold 1 to {SecretPayload.MaxLength} bytes");
            }
            return SecretPayload.FromBinary(binary);
        }
        var text = ToSecretString(write.Data ?? throw new BrokerException(BrokerErrorKind.InvalidArgument, "a write needs fields or bytes"));
        if (text.Length > SecretPayload.MaxLength)
        {
            BrokerException.ThrowInvalidArgument($"aws-sm secrets hold at most {SecretPayload.MaxLength} characters (the fields as a JSON object)");
        }
        return SecretPayload.FromString(text);
    }

    /// <summary>Fields as the JSON object SecretString AWS recommends (and <see cref="ParseSecretString"/> reads back).</summary>
    public static string ToSecretString(IReadOnlyDictionary<string, string> data)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in data)
            {
                writer.WriteString(key, value);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
