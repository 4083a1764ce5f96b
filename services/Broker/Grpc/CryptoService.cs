using Google.Protobuf;
using Grpc.Core;
using SecretsBroker.Broker.Crypto;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

/// <summary>The v1 Crypto gRPC surface (crypto.proto): protobuf in, <see cref="CryptoOperations"/>, protobuf out.</summary>
internal sealed class CryptoService(CryptoOperations crypto) : V1.Crypto.CryptoBase
{
    public override async Task<EncryptResponse> Encrypt(EncryptRequest request, ServerCallContext context)
    {
        var result = await crypto.EncryptAsync(context.GetAccess(), request.KeyPath, request.Plaintext.Memory, request.Context, context.CancellationToken)
            .ConfigureAwait(false);
        return new EncryptResponse { Ciphertext = UnsafeByteOperations.UnsafeWrap(result.Ciphertext), KeyPath = result.KeyPath, KeyVersion = result.KeyVersion };
    }

    public override async Task<DecryptResponse> Decrypt(DecryptRequest request, ServerCallContext context)
    {
        var result = await crypto.DecryptAsync(context.GetAccess(), request.KeyPath, request.Ciphertext.Memory, request.Context, context.CancellationToken)
            .ConfigureAwait(false);
        return new DecryptResponse { Plaintext = UnsafeByteOperations.UnsafeWrap(result.Plaintext), KeyPath = result.KeyPath, KeyVersion = result.KeyVersion };
    }

    public override async Task<GenerateDataKeyResponse> GenerateDataKey(GenerateDataKeyRequest request, ServerCallContext context)
    {
        var result = await crypto.GenerateDataKeyAsync(context.GetAccess(), request.KeyPath, request.Context, context.CancellationToken).ConfigureAwait(false);
        return new GenerateDataKeyResponse
        {
            PlaintextKey = UnsafeByteOperations.UnsafeWrap(result.PlaintextKey),
            WrappedKey = UnsafeByteOperations.UnsafeWrap(result.WrappedKey),
            KeyPath = result.KeyPath,
            KeyVersion = result.KeyVersion,
        };
    }

    public override async Task<DecryptDataKeyResponse> DecryptDataKey(DecryptDataKeyRequest request, ServerCallContext context)
    {
        var result = await crypto.DecryptDataKeyAsync(context.GetAccess(), request.KeyPath, request.WrappedKey.Memory, request.Context, context.CancellationToken)
            .ConfigureAwait(false);
        return new DecryptDataKeyResponse { PlaintextKey = UnsafeByteOperations.UnsafeWrap(result.Plaintext), KeyPath = result.KeyPath, KeyVersion = result.KeyVersion };
    }

    public override async Task<RewrapResponse> Rewrap(RewrapRequest request, ServerCallContext context)
    {
        var result = await crypto.RewrapAsync(context.GetAccess(), request.KeyPath, request.Ciphertext.Memory, request.Context, context.CancellationToken)
            .ConfigureAwait(false);
        return new RewrapResponse { Ciphertext = UnsafeByteOperations.UnsafeWrap(result.Ciphertext), KeyPath = result.KeyPath, KeyVersion = result.KeyVersion };
    }
}
