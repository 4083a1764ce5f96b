using Amazon.KeyManagementService;
using Amazon.KeyManagementService.Model;
using Amazon.Runtime;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>
/// moto's server KMS behind an <c>aws-kms</c> mount <c>kms</c> (fixed emulator keys, as the aws-sm tests use): aliases
/// <c>alias/app</c> and <c>alias/other</c>, and a disabled key mapped as <c>kms/disabled</c>. Keys are set up with the AWS SDK.
/// </summary>
public sealed class AwsKmsFixture : IKeyStoreFixture, IAsyncLifetime
{
    private readonly MotoServer _moto = new();
    private AmazonKeyManagementServiceClient _kms = null!;
    private string _appKeyId = "";

    public BrokerHost Host { get; private set; } = null!;

    public string KeyPath => "kms/app";

    public bool NumberedVersions => false;

    public bool AcceptsEmptyPlaintext => false;

    public async Task InitializeAsync()
    {
        await _moto.InitializeAsync();
        _kms = new AmazonKeyManagementServiceClient(new BasicAWSCredentials(MotoServer.AccessKeyId, MotoServer.SecretAccessKey),
            new AmazonKeyManagementServiceConfig { ServiceURL = _moto.Url.ToString(), AuthenticationRegion = MotoServer.Region });
        _appKeyId = await CreateKeyAsync("alias/app");
        await CreateKeyAsync("alias/other");
        var disabled = await CreateKeyAsync(null);
        await _kms.DisableKeyAsync(new DisableKeyRequest { KeyId = disabled });
        var configuration = _moto.MountConfiguration("kms");
        configuration["Broker:Mounts:0:Type"] = "aws-kms";
        configuration["Broker:Mounts:0:Keys:disabled"] = disabled;
        configuration["Broker:Policy:File"] = "crypto-policy.yaml";
        var directory = new TestDirectory();
        directory.WriteFile("crypto-policy.yaml", CryptoCalls.AllowCryptoPolicy);
        Host = await BrokerHost.StartAsync(configuration, directory);
    }

    private async Task<string> CreateKeyAsync(string? alias)
    {
        var key = await _kms.CreateKeyAsync(new CreateKeyRequest { Description = "FAKE test key" });
        if (alias is not null)
        {
            await _kms.CreateAliasAsync(new CreateAliasRequest { AliasName = alias, TargetKeyId = key.KeyMetadata.KeyId });
        }
        return key.KeyMetadata.KeyId;
    }

    /// <summary>KMS rotates the backing key on demand; the key id stays, versions are inside the blobs.</summary>
    public Task RotateAsync() => _kms.RotateKeyOnDemandAsync(new RotateKeyOnDemandRequest { KeyId = _appKeyId });

    public Task SetMinDecryptionVersionAsync(int version) => throw new NotSupportedException("KMS has no minimum decryption version");

    public async Task DisposeAsync()
    {
        _kms.Dispose();
        await Host.DisposeAsync();
        await _moto.DisposeAsync();
    }
}

[Trait("Category", "Integration")]
public sealed class AwsKmsContractTests(AwsKmsFixture fixture) : KeyStoreContractTests(fixture), IClassFixture<AwsKmsFixture>
{
    [Fact]
    public async Task A_missing_alias_is_not_found()
    {
        // (moto 5.2 encrypts under a disabled key, where KMS answers DisabledException: that mapping is not exercised here.)
        Assert.Equal(StatusCode.NotFound, (await CryptoCalls.FailsAsync(() => Calls.EncryptAsync("kms/missing", Plaintext))).StatusCode);
    }

    [Fact]
    public async Task A_ciphertext_of_one_key_does_not_decrypt_as_another()
    {
        var encrypted = (await Calls.EncryptAsync("kms/other", Plaintext, Context)).Ciphertext.ToByteArray();
        var (header, stored) = Broker.Crypto.CiphertextHeader.Open(encrypted);
        var renamed = (header with { Key = "app" }).Seal(stored);
        var status = await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(Google.Protobuf.ByteString.CopyFrom(renamed), Context));
        // KMS answers IncorrectKeyException (INVALID_ARGUMENT); moto 5.2 answers AccessDeniedException (PERMISSION_DENIED).
        Assert.Contains(status.StatusCode, new[] { StatusCode.InvalidArgument, StatusCode.PermissionDenied });
    }
}
