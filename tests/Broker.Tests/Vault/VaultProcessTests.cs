using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>The emulator as a real process, started the way CI and developers start it, crashed and restarted.</summary>
public sealed class VaultProcessTests
{
    private const string RootToken = "FAKE-process-root-token";

    private static async Task<ExternalProcess> StartEmulatorAsync(int port, string seedFile)
    {
        var process = ExternalProcess.Start(RepositoryLayout.DotNet,
        [
            RepositoryLayout.BuildOutput("tests/VaultEmulator", "SecretsBroker.VaultEmulator.dll"),
            "--urls", $"http://127.0.0.1:{port}", "--root-token", RootToken, "--seed", seedFile,
        ]);
        await process.WaitForOutputAsync(line => line.Contains($"vault emulator listening on http://127.0.0.1:{port}", StringComparison.Ordinal));
        return process;
    }

    [Fact]
    public async Task Reads_are_unavailable_while_vault_is_down_and_work_again_once_it_is_back()
    {
        using var directory = new TestDirectory();
        var seedFile = directory.WriteFile("seed.json", """{ "kv": { "secret": { "app/db": { "password": "FAKE-process-password" } } } }""");
        var port = FreePort.Next();
        var emulator = await StartEmulatorAsync(port, seedFile);
        var configuration = VaultFixture.BrokerConfiguration(new Uri($"http://127.0.0.1:{port}"), new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = RootToken,
        });
        await using var host = await BrokerHost.StartAsync(configuration);
        var client = host.CreateClient();

        var before = await client.GetSecretAsync("vault/app/db");
        await emulator.DisposeAsync(); // SIGKILL, as a crash
        var down = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));
        await using var restarted = await StartEmulatorAsync(port, seedFile);
        var after = await client.GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-process-password", before.Data["password"]);
        Assert.Equal(StatusCode.Unavailable, down.StatusCode);
        Assert.Equal("vault is unreachable", down.Status.Detail);
        Assert.Equal("FAKE-process-password", after.Data["password"]);
    }
}
