using Microsoft.AspNetCore.Grpc.JsonTranscoding;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// Tells HTTP/JSON calls (gRPC JSON transcoding endpoints, docs/http.md) from gRPC calls: both carry the method's
/// GrpcMethodMetadata and run the same interceptor and service code, but a transcoded call has a JSON body, its own
/// URL and answers with an HTTP status and a google.rpc.Status JSON body.
/// </summary>
public static class TranscodedCalls
{
    public static bool IsTranscoded(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<GrpcJsonTranscodingMetadata>() is not null;
}
