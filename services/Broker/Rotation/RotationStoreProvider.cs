using SecretsBroker.Broker.Backends;

namespace SecretsBroker.Broker.Rotation;

/// <summary>The rotation store of each mount type that can store versions.</summary>
public sealed class RotationStoreProvider : IRotationStoreProvider
{
    // WRITE-LAYER: vault-kv and local (pending record at a sibling path) and aws-sm (stages) stores are built on the backend
    // write capability of branch h-write once it is merged; until then no mount can store a rotated version.
    public IRotationStore? StoreOf(MountedBackend mounted) => null;
}

/// <summary>aws-managed rotation (AWS RotateSecret with the secret's own Lambda).</summary>
public sealed class AwsManagedRotation : IAwsManagedRotation
{
    // WRITE-LAYER: needs the aws-sm client's RotateSecret operation; refused clearly until it is in.
    public Task<RotationResult> RotateAsync(MountedBackend mounted, string name, CancellationToken cancellationToken) =>
        throw new Core.BrokerException(Core.BrokerErrorKind.FailedPrecondition, "aws-managed rotation is not available in this build");
}
