using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>The generated Crypto stub on a channel to a test broker, sending <paramref name="token"/> as a bearer token.</summary>
public sealed class CryptoCalls(Uri address, string token) : IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(address);

    public V1.Crypto.CryptoClient Client => new(_channel);

    public Metadata Headers { get; } = new() { { "authorization", $"Bearer {token}" } };

    /// <summary>A policy file granting the test token reads and every crypto capability everywhere.</summary>
    public const string AllowCryptoPolicy = """
        policies:
          - name: test-alpha-crypto
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["**"]
                capabilities: [read, encrypt, decrypt, datakey]
        """;

    public static IDictionary<string, string> Context(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => p.Value);

    public async Task<EncryptResponse> EncryptAsync(string keyPath, byte[] plaintext, IDictionary<string, string>? context = null)
    {
        var request = new EncryptRequest { KeyPath = keyPath, Plaintext = ByteString.CopyFrom(plaintext) };
        request.Context.Add(context ?? new Dictionary<string, string>());
        return await Client.EncryptAsync(request, Headers);
    }

    public async Task<DecryptResponse> DecryptAsync(ByteString ciphertext, IDictionary<string, string>? context = null, string keyPath = "")
    {
        var request = new DecryptRequest { KeyPath = keyPath, Ciphertext = ciphertext };
        request.Context.Add(context ?? new Dictionary<string, string>());
        return await Client.DecryptAsync(request, Headers);
    }

    public async Task<GenerateDataKeyResponse> GenerateDataKeyAsync(string keyPath, IDictionary<string, string>? context = null)
    {
        var request = new GenerateDataKeyRequest { KeyPath = keyPath };
        request.Context.Add(context ?? new Dictionary<string, string>());
        return await Client.GenerateDataKeyAsync(request, Headers);
    }

    public async Task<DecryptDataKeyResponse> DecryptDataKeyAsync(ByteString wrapped, IDictionary<string, string>? context = null, string keyPath = "")
    {
        var request = new DecryptDataKeyRequest { KeyPath = keyPath, WrappedKey = wrapped };
        request.Context.Add(context ?? new Dictionary<string, string>());
        return await Client.DecryptDataKeyAsync(request, Headers);
    }

    public async Task<RewrapResponse> RewrapAsync(ByteString ciphertext, IDictionary<string, string>? context = null, string keyPath = "")
    {
        var request = new RewrapRequest { KeyPath = keyPath, Ciphertext = ciphertext };
        request.Context.Add(context ?? new Dictionary<string, string>());
        return await Client.RewrapAsync(request, Headers);
    }

    /// <summary>The status of a call that must fail.</summary>
    public static async Task<Status> FailsAsync(Func<Task> call)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        return error.Status;
    }

    public void Dispose() => _channel.Dispose();
}
