using Grpc.Core;
using SecretsBroker.Broker.Secrets;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

/// <summary>The v1 SecretsBroker gRPC surface: protobuf in, read path, protobuf out.</summary>
internal sealed class SecretsBrokerService(SecretReader reader) : V1.SecretsBroker.SecretsBrokerBase
{
    public override async Task<GetSecretResponse> GetSecret(GetSecretRequest request, ServerCallContext context)
    {
        var served = await reader.GetAsync(context.GetAccess(), request.Path, request.ToSelector(), context.CancellationToken, request.ToFreshness());
        return new GetSecretResponse { Secret = served.ToProto() };
    }

    public override async Task<BatchGetSecretsResponse> BatchGetSecrets(BatchGetSecretsRequest request, ServerCallContext context)
    {
        var items = await reader.GetManyAsync(context.GetAccess(), request.Paths, context.CancellationToken);
        var response = new BatchGetSecretsResponse();
        response.Results.Add(items.Select(i => i.ToProto()));
        return response;
    }

    public override async Task<ListSecretsResponse> ListSecrets(ListSecretsRequest request, ServerCallContext context)
    {
        var page = await reader.ListAsync(context.GetAccess(), request.Prefix, request.PageSize, request.PageToken, context.CancellationToken);
        var response = new ListSecretsResponse { NextPageToken = page.NextPageToken };
        response.Secrets.Add(page.Entries.Select(e => e.ToProto()));
        return response;
    }
}
