using System.Diagnostics.Metrics;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Crypto;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>
/// A broker with a local-keyring mount <c>keys</c> (key file, watched), a local secrets mount <c>team</c>, a 4 KiB
/// plaintext limit, the audit in a local file, and a second identity <c>trainer</c> that may only encrypt.
/// </summary>
public sealed class LocalKeyringFixture : IKeyStoreFixture, IAsyncLifetime
{
    public const string TrainerToken = "FAKE-test-token-trainer";
    public const string KeyV1 = "RkFLRS10ZXN0LWtleS12MS1ub3Qtc2VjcmV0LTMyYiE=";
    public const string KeyV2 = "RkFLRS10ZXN0LWtleS12Mi1ub3Qtc2VjcmV0LTMyYiE=";

    private const string Policy = """
        policies:
          - name: everything
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["**"]
                capabilities: [read, encrypt, decrypt, datakey]
          - name: trainer
            appliesTo: { subjects: [trainer] }
            rules:
              - paths: ["keys/**"]
                capabilities: [encrypt]
        """;

    private ByteString _canary = ByteString.Empty;

    public BrokerHost Host { get; private set; } = null!;

    public string KeyPath => "keys/app";

    public bool NumberedVersions => true;

    public string AuditFile => Path.Combine(Host.Directory.Path, "audit.jsonl");

    public static string KeyFile(int minDecryptionVersion, params string[] versions) =>
        "keys:\n  app:\n    minDecryptionVersion: " + minDecryptionVersion + "\n    versions:\n"
        + string.Concat(versions.Select((v, i) => $"      \"{i + 1}\": {v}\n"))
        + "  other:\n    versions:\n      \"1\": " + KeyV2 + "\n";

    public async Task InitializeAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("keys.yaml", KeyFile(1, KeyV1));
        directory.WriteFile("team.yaml", "secrets:\n  ml/db:\n    data: { password: FAKE-password-alpha }\n");
        directory.WriteFile("policy.yaml", Policy);
        Host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "keys",
            ["Broker:Mounts:0:Type"] = "local-keyring",
            ["Broker:Mounts:0:KeyFile"] = "keys.yaml",
            ["Broker:Mounts:1:Prefix"] = "team",
            ["Broker:Mounts:1:Type"] = "local",
            ["Broker:Mounts:1:File"] = "team.yaml",
            ["Broker:Crypto:MaxPlaintextBytes"] = "4096",
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Audit:LocalFile"] = "audit.jsonl",
            ["Broker:Auth:DevTokens:Tokens:1:Subject"] = "trainer",
            ["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(TrainerToken),
        }, directory);
        using var calls = new CryptoCalls(Host.Address, BrokerHost.TestToken);
        _canary = (await calls.EncryptAsync(KeyPath, [1])).Ciphertext;
    }

    public async Task RotateAsync()
    {
        Host.Directory.WriteFile("keys.yaml", KeyFile(1, KeyV1, KeyV2));
        using var calls = new CryptoCalls(Host.Address, BrokerHost.TestToken);
        await Eventually.WaitUntilAsync(async () => (await calls.EncryptAsync(KeyPath, [1])).KeyVersion == "2", because: "the key file's version 2 is loaded");
    }

    public async Task SetMinDecryptionVersionAsync(int version)
    {
        Host.Directory.WriteFile("keys.yaml", KeyFile(version, KeyV1, KeyV2));
        using var calls = new CryptoCalls(Host.Address, BrokerHost.TestToken);
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                await calls.DecryptAsync(_canary);
                return false;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition)
            {
                return true;
            }
        }, because: "the key file's minimum decryption version is loaded");
    }

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

[Trait("Category", "Integration")]
public sealed class LocalKeyringContractTests(LocalKeyringFixture fixture) : KeyStoreContractTests(fixture), IClassFixture<LocalKeyringFixture>;

/// <summary>The Crypto API's own rules, shown on a local keyring: limits, capabilities, audit, metrics, clear errors.</summary>
[Trait("Category", "Integration")]
public sealed class CryptoApiTests(LocalKeyringFixture fixture) : IClassFixture<LocalKeyringFixture>, IDisposable
{
    private readonly CryptoCalls _calls = new(fixture.Host.Address, BrokerHost.TestToken);

    [Fact]
    public async Task Plaintext_over_the_limit_is_resource_exhausted_pointing_at_data_keys()
    {
        Assert.Equal("1", (await _calls.EncryptAsync("keys/other", new byte[4096])).KeyVersion);
        var status = await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("keys/other", new byte[4097]));
        Assert.Equal(StatusCode.ResourceExhausted, status.StatusCode);
        Assert.Contains("GenerateDataKey", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Encrypt_is_grantable_without_decrypt_or_datakey()
    {
        using var trainer = new CryptoCalls(fixture.Host.Address, LocalKeyringFixture.TrainerToken);
        var encrypted = await trainer.EncryptAsync("keys/other", Encoding.UTF8.GetBytes("FAKE-trainer-checkpoint"));
        Assert.Equal(StatusCode.PermissionDenied, (await CryptoCalls.FailsAsync(() => trainer.DecryptAsync(encrypted.Ciphertext))).StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, (await CryptoCalls.FailsAsync(() => trainer.GenerateDataKeyAsync("keys/other"))).StatusCode);
        // Rewrap needs decrypt as well as encrypt.
        Assert.Equal(StatusCode.PermissionDenied, (await CryptoCalls.FailsAsync(() => trainer.RewrapAsync(encrypted.Ciphertext))).StatusCode);
        // The serving identity decrypts it.
        Assert.Equal("FAKE-trainer-checkpoint", (await _calls.DecryptAsync(encrypted.Ciphertext)).Plaintext.ToStringUtf8());
    }

    [Fact]
    public async Task Bad_requests_get_clear_statuses()
    {
        Assert.Equal(StatusCode.NotFound, (await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("keys/missing", [1]))).StatusCode);
        Assert.Equal(StatusCode.FailedPrecondition, (await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("team/ml/db", [1]))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("keys", [1]))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("keys//x", [1]))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument,
            (await CryptoCalls.FailsAsync(() => _calls.EncryptAsync("keys/other", [1], CryptoCalls.Context(("secretsbroker:kind", "datakey"))))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.DecryptAsync(ByteString.Empty))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.DecryptAsync(ByteString.CopyFromUtf8("vault:v1:abcd")))).StatusCode);
        // A ciphertext whose header names another key of the same mount does not decrypt (the key is bound).
        var encrypted = (await _calls.EncryptAsync("keys/other", [1, 2, 3])).Ciphertext.ToByteArray();
        var (header, stored) = CiphertextHeader.Open(encrypted);
        var renamed = (header with { Key = "app" }).Seal(stored with { Version = "1" });
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.DecryptAsync(ByteString.CopyFrom(renamed)))).StatusCode);
        // The kind is bound too: a value relabelled as a data key does not unwrap.
        var relabelled = (header with { Kind = CiphertextKind.DataKey }).Seal(stored);
        Assert.Equal(StatusCode.InvalidArgument, (await CryptoCalls.FailsAsync(() => _calls.DecryptDataKeyAsync(ByteString.CopyFrom(relabelled)))).StatusCode);
    }

    [Fact]
    public async Task Audit_events_name_key_path_and_version_and_never_plaintext_keys_or_context_values()
    {
        var plaintext = "FAKE-audited-plaintext-7f3a";
        var contextValue = "FAKE-audited-context-value-91bc";
        var context = CryptoCalls.Context(("tenant", contextValue));
        var encrypted = await _calls.EncryptAsync("keys/other", Encoding.UTF8.GetBytes(plaintext), context);
        await _calls.DecryptAsync(encrypted.Ciphertext, context);
        var dataKey = await _calls.GenerateDataKeyAsync("keys/other", context);
        await _calls.DecryptDataKeyAsync(dataKey.WrappedKey, context);
        await CryptoCalls.FailsAsync(() => _calls.DecryptAsync(encrypted.Ciphertext, CryptoCalls.Context(("tenant", "FAKE-wrong"))));

        var events = await ReadEventsAsync(e => e.Action == AuditActions.DecryptDataKey && e.Decision == Decision.Allow);
        var text = File.ReadAllText(fixture.AuditFile);
        foreach (var forbidden in new[] { plaintext, contextValue, "tenant", Convert.ToBase64String(Encoding.UTF8.GetBytes(plaintext)),
            dataKey.PlaintextKey.ToBase64(), LocalKeyringFixture.KeyV1, LocalKeyringFixture.KeyV2 })
        {
            Assert.DoesNotContain(forbidden, text, StringComparison.Ordinal);
        }
        foreach (var action in new[] { AuditActions.Encrypt, AuditActions.Decrypt, AuditActions.GenerateDataKey, AuditActions.DecryptDataKey })
        {
            var allowed = events.Last(e => e.Event.Action == action && e.Event.Decision == Decision.Allow);
            Assert.Equal("keys/other", allowed.Path);
            Assert.Equal("keys", allowed.Event.Mount);
            Assert.Equal("1", allowed.Event.Version);
        }
        var refused = events.Last(e => e.Event.Action == AuditActions.Decrypt && e.Event.Decision != Decision.Allow);
        Assert.Equal((int)StatusCode.InvalidArgument, refused.Event.GrpcStatus);
        Assert.Equal("keys/other", refused.Path);
    }

    [Fact]
    public async Task Key_store_calls_are_measured_by_mount_operation_and_outcome()
    {
        using var calls = new MetricCollector<long>(fixture.Host.Services.GetRequiredService<IMeterFactory>(), BackendCallObserver.MeterName, "secretsbroker.backend.calls");
        var encrypted = await _calls.EncryptAsync("keys/other", [1]);
        await CryptoCalls.FailsAsync(() => _calls.DecryptAsync(encrypted.Ciphertext, CryptoCalls.Context(("k", "v"))));
        var measured = calls.GetMeasurementSnapshot();
        Assert.Contains(measured, m => Tag(m, "mount") == "keys" && Tag(m, "mount_type") == "local-keyring" && Tag(m, "operation") == "encrypt" && Tag(m, "outcome") == "ok");
        Assert.Contains(measured, m => Tag(m, "operation") == "decrypt" && Tag(m, "outcome") == "invalid_argument");
    }

    private static string? Tag(CollectedMeasurement<long> measurement, string name) => measurement.Tags[name]?.ToString();

    private async Task<IReadOnlyList<(AuditEvent Event, string? Path)>> ReadEventsAsync(Func<AuditEvent, bool> last)
    {
        IReadOnlyList<(AuditEvent Event, string? Path)> events = [];
        await Eventually.WaitUntilAsync(() =>
        {
            events = File.Exists(fixture.AuditFile)
                ? [.. File.ReadAllLines(fixture.AuditFile).Select(line => AuditEvent.Parser.ParseJson(line)).Select(e => (e, AuditStreamReader.Key.OpenPath(e)))]
                : [];
            return events.Any(e => last(e.Event));
        }, because: "the audit events reached the local file");
        return events;
    }

    public void Dispose() => _calls.Dispose();
}
