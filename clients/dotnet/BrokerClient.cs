using System.Runtime.CompilerServices;
using Grpc.Core;
using SecretsBroker.V1;
using CryptoClient = SecretsBroker.V1.Crypto.CryptoClient;
using V1Client = SecretsBroker.V1.SecretsBroker.SecretsBrokerClient;

namespace SecretsBroker.Client;

/// <summary>
/// A typed SecretsBroker client. Failures surface as <see cref="RpcException"/> with the broker's status
/// code (NotFound, PermissionDenied, Unauthenticated, Unavailable, ...). Calls without their own deadline
/// get <see cref="BrokerClientOptions.DefaultTimeout"/>.
/// </summary>
public sealed partial class BrokerClient(V1Client client, TimeSpan? defaultTimeout = null, BearerTokenSource? tokens = null, CryptoClient? crypto = null)
{
    /// <summary>The generated client, for calls this wrapper does not cover.</summary>
    public V1Client Raw => client;

    /// <summary>Where the bearer token of each call comes from (null: none, or supplied otherwise); streams refresh it on UNAUTHENTICATED.</summary>
    public BearerTokenSource? Tokens => tokens;

    /// <summary>
    /// Reads the latest version of a secret, or the given version id. <paramref name="maxAge"/> refuses cached
    /// values older than that; <paramref name="bypassCache"/> reads the backend whatever the cache holds.
    /// </summary>
    public async Task<Secret> GetSecretAsync(string path, string? version = null, DateTime? deadline = null, TimeSpan? maxAge = null, bool bypassCache = false,
        CancellationToken cancellationToken = default)
    {
        var request = new GetSecretRequest { Path = path, BypassCache = bypassCache };
        if (version is not null)
        {
            request.Version = version;
        }
        if (maxAge is { } age)
        {
            request.MaxAge = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(age);
        }
        var response = await client.GetSecretAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
        return response.Secret;
    }

    /// <summary>
    /// Writes a new version with the fields <paramref name="data"/> (PutSecret; needs the <c>write</c> capability).
    /// <paramref name="expectedVersion"/> makes it check-and-set: the version that must be current, or "" for "only if
    /// the secret does not exist yet"; a mismatch is FailedPrecondition naming the current version.
    /// </summary>
    public Task<PutSecretResponse> PutSecretAsync(string path, IReadOnlyDictionary<string, string> data, string? expectedVersion = null, DateTime? deadline = null,
        CancellationToken cancellationToken = default)
    {
        var request = new PutSecretRequest { Path = path };
        foreach (var (name, value) in data)
        {
            request.Data[name] = value;
        }
        return PutAsync(request, expectedVersion, deadline, cancellationToken);
    }

    /// <summary>Writes a new version holding <paramref name="binary"/> (aws-sm SecretBinary, or a local mount's bytes).</summary>
    public Task<PutSecretResponse> PutSecretAsync(string path, ReadOnlyMemory<byte> binary, string? expectedVersion = null, DateTime? deadline = null,
        CancellationToken cancellationToken = default) =>
        PutAsync(new PutSecretRequest { Path = path, BinaryData = Google.Protobuf.ByteString.CopyFrom(binary.Span) }, expectedVersion, deadline, cancellationToken);

    private async Task<PutSecretResponse> PutAsync(PutSecretRequest request, string? expectedVersion, DateTime? deadline, CancellationToken cancellationToken)
    {
        if (expectedVersion is not null)
        {
            request.ExpectedVersion = expectedVersion;
        }
        return await client.PutSecretAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Reads the version carrying a staging label (aws-sm mounts), for example AWSPREVIOUS.</summary>
    public async Task<Secret> GetSecretAtStageAsync(string path, string stage, DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var response = await client.GetSecretAsync(new GetSecretRequest { Path = path, Stage = stage }, Options(deadline, cancellationToken)).ConfigureAwait(false);
        return response.Secret;
    }

    /// <summary>Reads many secrets in one call; one result per path, in order, each a secret or its own error.</summary>
    /// <summary>
    /// Runs the path's rotation now (RotateSecret; needs the <c>rotate</c> capability) and answers once the new version is
    /// current. Concurrent calls for one path share one rotation. Not retried by the client: a rotation is not idempotent.
    /// </summary>
    public async Task<RotateSecretResponse> RotateSecretAsync(string path, DateTime? deadline = null, CancellationToken cancellationToken = default) =>
        await client.RotateSecretAsync(new RotateSecretRequest { Path = path }, Options(deadline, cancellationToken)).ConfigureAwait(false);

    public async Task<IReadOnlyList<BatchGetSecretsResult>> BatchGetSecretsAsync(IEnumerable<string> paths, DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new BatchGetSecretsRequest();
        request.Paths.Add(paths);
        var response = await client.BatchGetSecretsAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
        return response.Results;
    }

    /// <summary>Reads one page of a listing.</summary>
    public async Task<ListSecretsResponse> ListSecretsPageAsync(string prefix, int pageSize = 0, string? pageToken = null, DateTime? deadline = null, CancellationToken cancellationToken = default)
    {
        var request = new ListSecretsRequest { Prefix = prefix, PageSize = pageSize, PageToken = pageToken ?? "" };
        return await client.ListSecretsAsync(request, Options(deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Lists every secret beneath a prefix, fetching pages as the enumeration goes.</summary>
    public async IAsyncEnumerable<SecretListing> ListSecretsAsync(string prefix, int pageSize = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var pageToken = "";
        do
        {
            var page = await ListSecretsPageAsync(prefix, pageSize, pageToken, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var listing in page.Secrets)
            {
                yield return listing;
            }
            pageToken = page.NextPageToken;
        }
        while (pageToken.Length > 0);
    }

    private CallOptions Options(DateTime? deadline, CancellationToken cancellationToken) =>
        new(deadline: deadline ?? (defaultTimeout is { } timeout ? DateTime.UtcNow + timeout : null), cancellationToken: cancellationToken);
}
