using Grpc.Core;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Watching;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker.Writing;
using SecretsBroker.Broker.Rotation;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

/// <summary>The v1 SecretsBroker gRPC surface: protobuf in, read path, protobuf out.</summary>
/// <remarks>
/// Streams are authorized for their whole life: each renewal, rotation and pushed event is checked against the current
/// policy (LeaseKeeper, SecretWatcher), and a stream ends UNAUTHENTICATED when its caller's credential expires (<see cref="StreamLifetimes"/>).
/// </remarks>
internal sealed class SecretsBrokerService(SecretReader reader, SecretWrites writes, LeaseOperations leases, LeaseKeeper keeper, SecretWatcher watcher,
    StreamLifetimes lifetimes, SecretRotation rotation)
    : V1.SecretsBroker.SecretsBrokerBase
{
    public override async Task<GetSecretResponse> GetSecret(GetSecretRequest request, ServerCallContext context)
    {
        var served = await reader.GetAsync(context.GetAccess(), request.Path, request.ToSelection(), context.CancellationToken).ConfigureAwait(false);
        return new GetSecretResponse { Secret = served.ToProto() };
    }

    public override async Task<BatchGetSecretsResponse> BatchGetSecrets(BatchGetSecretsRequest request, ServerCallContext context)
    {
        var items = await reader.GetManyAsync(context.GetAccess(), request.Paths, context.CancellationToken).ConfigureAwait(false);
        var response = new BatchGetSecretsResponse();
        response.Results.Add(items.Select(i => i.ToProto()));
        return response;
    }

    public override async Task<ListSecretsResponse> ListSecrets(ListSecretsRequest request, ServerCallContext context)
    {
        var page = await reader.ListAsync(context.GetAccess(), request.Prefix, request.PageSize, request.PageToken, context.CancellationToken).ConfigureAwait(false);
        var response = new ListSecretsResponse { NextPageToken = page.NextPageToken };
        response.Secrets.Add(page.Entries.Select(e => e.ToProto()));
        return response;
    }

    public override async Task<PutSecretResponse> PutSecret(PutSecretRequest request, ServerCallContext context) =>
        (await writes.PutAsync(context.GetAccess(), request.ToPut(), context.CancellationToken).ConfigureAwait(false)).ToProto();

    public override async Task<RotateSecretResponse> RotateSecret(RotateSecretRequest request, ServerCallContext context) =>
        (await rotation.RotateAsync(context.GetAccess(), request.Path, context.CancellationToken).ConfigureAwait(false)).ToProto(request.Path);

    public override async Task<Lease> IssueCredentials(IssueCredentialsRequest request, ServerCallContext context) =>
        (await leases.IssueAsync(context.GetAccess(), request.Path, context.CancellationToken).ConfigureAwait(false)).ToProto();

    public override async Task<RevokeLeaseResponse> RevokeLease(RevokeLeaseRequest request, ServerCallContext context)
    {
        await leases.RevokeAsync(context.GetAccess(), request.LeaseId, context.CancellationToken).ConfigureAwait(false);
        return new RevokeLeaseResponse();
    }

    public override async Task KeepAlive(IAsyncStreamReader<KeepAliveRequest> requestStream, IServerStreamWriter<LeaseEvent> responseStream,
        ServerCallContext context)
    {
        var access = context.GetAccess();
        using var lifetime = lifetimes.Begin(access, context.CancellationToken);
        var session = new KeepAliveSession(access);
        await context.WriteResponseHeadersAsync([]).ConfigureAwait(false);
        var writer = WriteEventsAsync(session, responseStream, lifetime.Token);
        try
        {
            while (await requestStream.MoveNext(lifetime.Token).ConfigureAwait(false))
            {
                var request = requestStream.Current;
                foreach (var leaseId in request.DetachLeaseIds)
                {
                    await keeper.DetachAsync(session, leaseId).ConfigureAwait(false);
                }
                foreach (var leaseId in request.AttachLeaseIds)
                {
                    await keeper.AttachAsync(session, leaseId).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException || lifetime.Token.IsCancellationRequested)
        {
            // The client went away or its credential expired; its leases wait for the grace period (a re-attach).
        }
        finally
        {
            await keeper.StreamEndedAsync(session).ConfigureAwait(false);
            await writer.ConfigureAwait(false);
        }
        if (lifetime.CredentialExpired)
        {
            throw await lifetimes.ExpiredAsync(access).ConfigureAwait(false);
        }
    }

    private static async Task WriteEventsAsync(KeepAliveSession session, IServerStreamWriter<LeaseEvent> responseStream, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var notice in session.Events.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(notice.ToProto(), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException)
        {
            // The stream is gone.
        }
    }

    public override async Task WatchSecrets(WatchSecretsRequest request, IServerStreamWriter<SecretEvent> responseStream, ServerCallContext context)
    {
        var access = context.GetAccess();
        using var lifetime = lifetimes.Begin(access, context.CancellationToken);
        var subscription = await watcher.SubscribeAsync(access, request.Paths, request.Prefixes, context.CancellationToken).ConfigureAwait(false);
        try
        {
            // Headers tell the client the watch is in place: changes from now on produce events.
            await context.WriteResponseHeadersAsync([]).ConfigureAwait(false);
            await foreach (var message in subscription.Events.Reader.ReadAllAsync(lifetime.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(message.ToProto(), lifetime.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (lifetime.Token.IsCancellationRequested)
        {
            // The client cancelled the watch, or its credential expired.
        }
        finally
        {
            watcher.Unsubscribe(subscription);
        }
        if (lifetime.CredentialExpired)
        {
            throw await lifetimes.ExpiredAsync(access).ConfigureAwait(false);
        }
    }
}
