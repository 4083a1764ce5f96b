using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;
using SecretsBroker.Client.Envelope;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>A real broker with a local keyring <c>keys</c>; <c>trainer</c> may encrypt but has no <c>datakey</c>.</summary>
public sealed class EnvelopeBrokerFixture : IAsyncLifetime
{
    public const string TrainerToken = "FAKE-test-token-envelope-trainer";

    public BrokerHost Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var directory = new TestDirectory();
        directory.WriteFile("keys.yaml", LocalKeyringFixture.KeyFile(1, LocalKeyringFixture.KeyV1));
        directory.WriteFile("policy.yaml", """
            policies:
              - name: everything
                appliesTo: { subjects: [test-alpha] }
                rules:
                  - paths: ["keys/**"]
                    capabilities: [encrypt, decrypt, datakey]
              - name: trainer
                appliesTo: { subjects: [trainer] }
                rules:
                  - paths: ["keys/**"]
                    capabilities: [encrypt]
            """);
        Host = await BrokerHost.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = "keys",
            ["Broker:Mounts:0:Type"] = "local-keyring",
            ["Broker:Mounts:0:KeyFile"] = "keys.yaml",
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Auth:DevTokens:Tokens:1:Subject"] = "trainer",
            ["Broker:Auth:DevTokens:Tokens:1:Sha256"] = BrokerHost.Sha256Hex(TrainerToken),
        }, directory);
    }

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>
/// Envelope files end to end: data keys from the real broker, and the same files across the C# client,
/// the Python package (/usr/bin/python3, secretsbroker.crypto) and brokerctl, in both directions.
/// </summary>
[Trait("Category", "Integration")]
public sealed class EnvelopeBrokerTests(EnvelopeBrokerFixture fixture) : IClassFixture<EnvelopeBrokerFixture>, IDisposable
{
    private const string KeyPath = "keys/app";
    private static readonly Dictionary<string, string> Context = new() { ["model"] = "resnet-fake" };
    private readonly TestDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string PathOf(string name) => Path.Combine(_directory.Path, name);

    private EnvelopeEncryption Envelope(string token = BrokerHost.TestToken) => new(fixture.Host.CreateClient(token), 4096);

    [Fact]
    public async Task A_stream_round_trips_through_the_brokers_data_keys()
    {
        var plaintext = RandomNumberGenerator.GetBytes(3 * 4096 + 7);
        using var sealedStream = new MemoryStream();
        var header = await Envelope().EncryptAsync(new MemoryStream(plaintext), sealedStream, KeyPath, Context);
        using var restored = new MemoryStream();

        await Envelope().DecryptAsync(new MemoryStream(sealedStream.ToArray()), restored, Context, KeyPath);

        Assert.Equal(plaintext, restored.ToArray());
        Assert.Equal((KeyPath, "1"), (header.KeyPath, header.KeyVersion));
    }

    [Fact]
    public async Task The_broker_refuses_a_header_whose_context_was_edited_to_the_callers()
    {
        using var sealedStream = new MemoryStream();
        await Envelope().EncryptAsync(new MemoryStream([1, 2, 3]), sealedStream, KeyPath, new Dictionary<string, string> { ["model"] = "resnet-fake" });
        var envelope = sealedStream.ToArray();
        var at = envelope.AsSpan().IndexOf("resnet-fake"u8);
        "resnet-evil"u8.CopyTo(envelope.AsSpan(at));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Envelope().DecryptAsync(new MemoryStream(envelope), new MemoryStream(), new Dictionary<string, string> { ["model"] = "resnet-evil" }));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode); // the wrapped key is bound to the original context
    }

    [Fact]
    public async Task Without_datakey_the_broker_hands_out_no_data_key()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Envelope(EnvelopeBrokerFixture.TrainerToken).EncryptAsync(new MemoryStream([1]), new MemoryStream(), KeyPath, Context));
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public async Task Small_values_go_through_the_client()
    {
        var client = fixture.Host.CreateClient();
        var encrypted = await client.EncryptAsync(KeyPath, "FAKE-small-value"u8.ToArray(), Context);
        var decrypted = await client.DecryptAsync(encrypted.Ciphertext.Memory, Context);
        var rewrapped = await client.RewrapAsync(encrypted.Ciphertext.Memory, Context);

        Assert.Equal("FAKE-small-value", decrypted.Plaintext.ToStringUtf8());
        Assert.Equal("FAKE-small-value", (await client.DecryptAsync(rewrapped.Ciphertext.Memory, Context)).Plaintext.ToStringUtf8());
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => client.DecryptAsync(encrypted.Ciphertext.Memory))).StatusCode);
    }

    [Fact]
    public async Task A_file_encrypted_by_csharp_decrypts_with_python_and_brokerctl()
    {
        var plaintext = RandomNumberGenerator.GetBytes(5 * 4096 + 3);
        await File.WriteAllBytesAsync(PathOf("model.bin"), plaintext);
        await Envelope().EncryptFileAsync(PathOf("model.bin"), PathOf("model.sbef"), KeyPath, Context);

        await PythonAsync("crypto.decrypt_file(sys.argv[1], sys.argv[2], context={'model': 'resnet-fake'}, key_path='keys/app', client=client)",
            PathOf("model.sbef"), PathOf("by-python.bin"));
        var (exit, _, stderr) = await BrokerCtlAsync("decrypt-file", PathOf("model.sbef"), PathOf("by-brokerctl.bin"), "--context", "model=resnet-fake");

        Assert.True(exit == 0, stderr);
        Assert.Equal(plaintext, await File.ReadAllBytesAsync(PathOf("by-python.bin")));
        Assert.Equal(plaintext, await File.ReadAllBytesAsync(PathOf("by-brokerctl.bin")));
    }

    [Fact]
    public async Task Files_encrypted_by_python_and_brokerctl_decrypt_with_csharp()
    {
        var plaintext = RandomNumberGenerator.GetBytes(5 * 4096 + 3);
        await File.WriteAllBytesAsync(PathOf("model.bin"), plaintext);
        await PythonAsync("crypto.encrypt_file(sys.argv[1], sys.argv[2], 'keys/app', context={'model': 'resnet-fake'}, client=client, chunk_size=4096)",
            PathOf("model.bin"), PathOf("by-python.sbef"));
        var (exit, stdout, stderr) = await BrokerCtlAsync("encrypt-file", KeyPath, PathOf("model.bin"), PathOf("by-brokerctl.sbef"), "-c", "model=resnet-fake");
        Assert.True(exit == 0, stderr);
        Assert.Equal(KeyPath, JsonDocument.Parse(stdout).RootElement.GetProperty("keyPath").GetString());

        foreach (var file in new[] { "by-python.sbef", "by-brokerctl.sbef" })
        {
            await Envelope().DecryptFileAsync(PathOf(file), PathOf(file + ".out"), Context);
            Assert.Equal(plaintext, await File.ReadAllBytesAsync(PathOf(file + ".out")));
        }
    }

    [Fact]
    public async Task Brokerctl_reports_a_tampered_file_and_leaves_no_plaintext()
    {
        await File.WriteAllBytesAsync(PathOf("model.bin"), RandomNumberGenerator.GetBytes(3 * 4096));
        await Envelope().EncryptFileAsync(PathOf("model.bin"), PathOf("model.sbef"), KeyPath, Context);
        var sealedBytes = await File.ReadAllBytesAsync(PathOf("model.sbef"));
        await File.WriteAllBytesAsync(PathOf("model.sbef"), sealedBytes[..^(4096 + 16)]); // last chunk dropped

        var (exit, _, stderr) = await BrokerCtlAsync("decrypt-file", PathOf("model.sbef"), PathOf("out.bin"), "-c", "model=resnet-fake");
        var (wrongContextExit, _, wrongContextError) = await BrokerCtlAsync("decrypt-file", PathOf("model.sbef"), PathOf("out.bin"), "-c", "model=other");

        Assert.Equal(10, exit);
        Assert.Equal("ENVELOPE_TRUNCATED", JsonDocument.Parse(stderr).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(7, wrongContextExit);
        Assert.Contains("ENVELOPE_CONTEXT_MISMATCH", wrongContextError);
        Assert.False(File.Exists(PathOf("out.bin")));
        Assert.Equal(["model.bin", "model.sbef"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task Brokerctl_encrypts_and_decrypts_small_values_through_stdin_and_stdout()
    {
        await File.WriteAllTextAsync(PathOf("value.txt"), "FAKE-api-key-0001");

        var (exit, ciphertext, stderr) = await ShellAsync($"dotnet \"{RepositoryLayout.BrokerCtlDll}\" encrypt keys/app -c model=resnet-fake < \"{PathOf("value.txt")}\"");
        Assert.True(exit == 0, stderr);
        await File.WriteAllTextAsync(PathOf("ciphertext.txt"), ciphertext);
        var (decryptExit, plaintext, decryptError) = await ShellAsync($"dotnet \"{RepositoryLayout.BrokerCtlDll}\" decrypt -c model=resnet-fake < \"{PathOf("ciphertext.txt")}\"");

        Assert.True(decryptExit == 0, decryptError);
        Assert.Equal("FAKE-api-key-0001", plaintext);
        Assert.DoesNotContain("FAKE-api-key", ciphertext);
    }

    private Dictionary<string, string?> Environment() => new()
    {
        ["SECRETSBROKER_TOKEN"] = BrokerHost.TestToken,
        ["SECRETSBROKER_TOKEN_FILE"] = null,
        ["SECRETSBROKER_ADDRESS"] = fixture.Host.Address.ToString(),
    };

    private Task<(int ExitCode, string StandardOutput, string StandardError)> BrokerCtlAsync(params string[] arguments) =>
        ExternalProcess.RunAsync(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], Environment());

    private Task<(int ExitCode, string StandardOutput, string StandardError)> ShellAsync(string command) =>
        ExternalProcess.RunAsync("/bin/sh", ["-c", command], Environment());

    /// <summary>Runs <paramref name="statement"/> in Debian's python3 with the repository's client package and a client of the test broker.</summary>
    private async Task PythonAsync(string statement, params string[] arguments)
    {
        var script = $"""
            import os, sys
            sys.path.insert(0, {JsonSerializer.Serialize(Path.Combine(RepositoryLayout.Root, "clients", "python", "src"))})
            import secretsbroker
            from secretsbroker import crypto
            client = secretsbroker.Client(os.environ["SECRETSBROKER_ADDRESS"].replace("http://", "").rstrip("/"), token=os.environ["SECRETSBROKER_TOKEN"])
            {statement}
            """;
        var (exit, stdout, stderr) = await ExternalProcess.RunAsync("/usr/bin/python3", ["-c", script, .. arguments], Environment());
        Assert.True(exit == 0, $"python3 exited {exit}: {stdout}{stderr}");
    }
}
