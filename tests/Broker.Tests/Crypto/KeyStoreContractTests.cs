using System.Text;
using Google.Protobuf;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>A broker with a key store mounted, and what the contract tests need to change its keys.</summary>
public interface IKeyStoreFixture
{
    BrokerHost Host { get; }

    /// <summary>A key path whose key the tests may rotate and constrain (fresh per test class).</summary>
    string KeyPath { get; }

    /// <summary>Whether the store reports numbered key versions (KMS keeps them inside its blob).</summary>
    bool NumberedVersions { get; }

    /// <summary>Whether the store encrypts an empty plaintext (KMS's Plaintext has a minimum length of 1: ValidationException).</summary>
    bool AcceptsEmptyPlaintext => true;

    /// <summary>Adds a version to the key; returns once the broker encrypts under it.</summary>
    Task RotateAsync();

    /// <summary>Sets the key's minimum decryption version.</summary>
    Task SetMinDecryptionVersionAsync(int version);
}

/// <summary>
/// What every key store must do behind the Crypto API (issue 20): round trips, context binding, tamper and key-path checks,
/// rewrap after rotation, the minimum decryption version. Each store's test class derives from this with its fixture.
/// </summary>
public abstract class KeyStoreContractTests(IKeyStoreFixture fixture) : IDisposable
{
    protected static readonly byte[] Plaintext = Encoding.UTF8.GetBytes("FAKE-plaintext-checkpoint-hash");
    protected static readonly IDictionary<string, string> Context = CryptoCalls.Context(("model", "FAKE-context-resnet"), ("stage", "train"));

    protected CryptoCalls Calls { get; } = new(fixture.Host.Address, BrokerHost.TestToken);

    protected IKeyStoreFixture Fixture => fixture;

    [Fact]
    public async Task Encrypt_then_decrypt_returns_the_plaintext_and_names_the_key()
    {
        var encrypted = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        Assert.Equal(fixture.KeyPath, encrypted.KeyPath);
        Assert.DoesNotContain(Encoding.UTF8.GetString(Plaintext), Encoding.Latin1.GetString(encrypted.Ciphertext.Span));

        // The ciphertext names its key: Decrypt needs no key path.
        var decrypted = await Calls.DecryptAsync(encrypted.Ciphertext, Context);
        Assert.Equal(Plaintext, decrypted.Plaintext.ToByteArray());
        Assert.Equal(fixture.KeyPath, decrypted.KeyPath);
        Assert.Equal(encrypted.KeyVersion, decrypted.KeyVersion);
        // Context order does not matter.
        var reordered = new Dictionary<string, string>(Context.Reverse());
        Assert.Equal(Plaintext, (await Calls.DecryptAsync(encrypted.Ciphertext, reordered, fixture.KeyPath)).Plaintext.ToByteArray());
    }

    [Fact]
    public async Task An_empty_plaintext_and_an_empty_context_round_trip()
    {
        if (!fixture.AcceptsEmptyPlaintext)
        {
            Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => Calls.EncryptAsync(fixture.KeyPath, []))).StatusCode);
            Assert.Equal(Plaintext, (await Calls.DecryptAsync((await Calls.EncryptAsync(fixture.KeyPath, Plaintext)).Ciphertext)).Plaintext.ToByteArray());
            return;
        }
        var encrypted = await Calls.EncryptAsync(fixture.KeyPath, []);
        Assert.Empty((await Calls.DecryptAsync(encrypted.Ciphertext)).Plaintext);
    }

    [Fact]
    public async Task A_wrong_or_missing_context_is_invalid_argument()
    {
        var encrypted = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        var wrong = CryptoCalls.Context(("model", "FAKE-context-other"), ("stage", "train"));
        foreach (var context in new[] { wrong, new Dictionary<string, string>(), CryptoCalls.Context(("model", "FAKE-context-resnet")) })
        {
            var status = await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(encrypted.Ciphertext, context));
            Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        }
    }

    [Fact]
    public async Task A_tampered_ciphertext_is_invalid_argument()
    {
        var encrypted = (await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context)).Ciphertext.ToByteArray();
        // Flip a bit of the store's ciphertext (the last byte), then truncate it, then break the header's magic.
        var flipped = (byte[])encrypted.Clone();
        flipped[^1] ^= 0x01;
        var truncated = encrypted[..^1];
        var noMagic = (byte[])encrypted.Clone();
        noMagic[0] = (byte)'X';
        foreach (var tampered in new[] { flipped, truncated, noMagic, encrypted[..6] })
        {
            var status = await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(ByteString.CopyFrom(tampered), Context));
            Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        }
    }

    [Fact]
    public async Task A_key_path_that_is_not_the_ciphertexts_is_invalid_argument()
    {
        var encrypted = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        var status = await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(encrypted.Ciphertext, Context, fixture.KeyPath + "-other"));
        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.DoesNotContain(fixture.KeyPath, status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_data_key_is_32_bytes_and_unwraps_only_with_its_context_and_only_through_DecryptDataKey()
    {
        var generated = await Calls.GenerateDataKeyAsync(fixture.KeyPath, Context);
        Assert.Equal(32, generated.PlaintextKey.Length);
        var unwrapped = await Calls.DecryptDataKeyAsync(generated.WrappedKey, Context);
        Assert.Equal(generated.PlaintextKey, unwrapped.PlaintextKey);
        Assert.Equal(generated.KeyVersion, unwrapped.KeyVersion);

        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => Calls.DecryptDataKeyAsync(generated.WrappedKey))).StatusCode);
        // A wrapped key is not a ciphertext of a value, and the other way round.
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(generated.WrappedKey, Context))).StatusCode);
        var encrypted = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => Calls.DecryptDataKeyAsync(encrypted.Ciphertext, Context))).StatusCode);
    }

    [Fact]
    public async Task Rewrap_after_rotation_moves_the_value_to_the_latest_version_and_min_decryption_version_retires_the_old_one()
    {
        var before = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        var wrapped = await Calls.GenerateDataKeyAsync(fixture.KeyPath, Context);
        await fixture.RotateAsync();

        var rewrapped = await Calls.RewrapAsync(before.Ciphertext, Context);
        var rewrappedKey = await Calls.RewrapAsync(wrapped.WrappedKey, Context);
        var after = await Calls.EncryptAsync(fixture.KeyPath, Plaintext, Context);
        if (fixture.NumberedVersions)
        {
            Assert.NotEqual(before.KeyVersion, rewrapped.KeyVersion);
            Assert.Equal(after.KeyVersion, rewrapped.KeyVersion);
            Assert.Equal(after.KeyVersion, rewrappedKey.KeyVersion);
        }
        Assert.Equal(Plaintext, (await Calls.DecryptAsync(rewrapped.Ciphertext, Context)).Plaintext.ToByteArray());
        Assert.Equal(wrapped.PlaintextKey, (await Calls.DecryptDataKeyAsync(rewrappedKey.Ciphertext, Context)).PlaintextKey);
        // A wrong context cannot be rewrapped either.
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => Calls.RewrapAsync(before.Ciphertext))).StatusCode);

        if (fixture.NumberedVersions)
        {
            await fixture.SetMinDecryptionVersionAsync(int.Parse(after.KeyVersion, System.Globalization.CultureInfo.InvariantCulture));
            var status = await CryptoCalls.FailsAsync(() => Calls.DecryptAsync(before.Ciphertext, Context));
            Assert.Equal(StatusCode.FailedPrecondition, status.StatusCode);
            Assert.Equal(Plaintext, (await Calls.DecryptAsync(rewrapped.Ciphertext, Context)).Plaintext.ToByteArray());
        }
    }

    public void Dispose()
    {
        Calls.Dispose();
        GC.SuppressFinalize(this);
    }
}
