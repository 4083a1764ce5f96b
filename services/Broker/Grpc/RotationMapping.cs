using Google.Protobuf.WellKnownTypes;
using SecretsBroker.Broker.Rotation;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

internal static class RotationMapping
{
    public static RotateSecretResponse ToProto(this RotationResult result, string path)
    {
        var response = new RotateSecretResponse
        {
            Path = path,
            Version = result.Version,
            PreviousVersion = result.PreviousVersion,
            Strategy = result.Strategy,
        };
        if (result.CreatedAt is { } created)
        {
            response.CreatedTime = Timestamp.FromDateTimeOffset(created);
        }
        return response;
    }
}
