using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>The emulator as a real process, started the way CI and developers start it, crashed and restarted.</summary>
[Trait("Category", "Integration")]
public sealed class VaultProcessTests
{
    private const string RootToken = "FAKE-process-root-token";

    /// <summary>Starts the emulator on <paramref name="port"/> (0: a port it picks) and returns it with the address it reports.</summary>
    private static async Task<(ExternalProcess Process, Uri Address)> StartEmulatorAsync(int port, string seedFile)
    {
        var process = ExternalProcess.Start(RepositoryLayout.DotNet,
        [
            RepositoryLayout.BuildOutput("tests/VaultEmulator", "SecretsBroker.VaultEmulator.dll"),
            "--urls", $"http://127.0.0.1:{port}", "--root-token", RootToken, "--seed", seedFile,
        ]);
        return (process, await process.WaitForListeningAddressAsync("vault emulator listening on"));
    }

    [Fact]
    public async Task Reads_are_unavailable_while_vault_is_down_and_work_again_once_it_is_back()
    {
        using var directory = new TestDirectory();
        var seedFile = directory.WriteFile("seed.json", """{ "kv": { "secret": { "app/db": { "password": "FAKE-process-password" } } } }""");
        var (emulator, address) = await StartEmulatorAsync(0, seedFile);
        var configuration = VaultFixture.BrokerConfiguration(address, new Dictionary<string, string?>
        {
            ["Broker:Vault:Connections:default:Auth:Method"] = "token",
            ["Broker:Vault:Connections:default:Auth:Token"] = RootToken,
        });
        await using var host = await BrokerHost.StartAsync(configuration);
        var client = host.CreateClient();

        var before = await client.GetSecretAsync("vault/app/db");
        await emulator.DisposeAsync(); // SIGKILL, as a crash
        var down = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("vault/app/db"));
        // Back on the port the crashed process had bound, where the broker is configured to find it.
        var (restarted, _) = await StartEmulatorAsync(address.Port, seedFile);
        await using var _ = restarted;
        var after = await client.GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-process-password", before.Data["password"]);
        Assert.Equal(StatusCode.Unavailable, down.StatusCode);
        Assert.Equal("vault is unreachable", down.Status.Detail);
        Assert.Equal("FAKE-process-password", after.Data["password"]);
    }
}
