using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Client;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>
/// The broker process killed (as by kill -9) right after each step of a staged rotation, then started again: the rotation
/// finishes on its own, and the stored current value logs in to PostgreSQL. The crash is injected by the test-only
/// Broker:RotationEngine:TestCrashAfterStep, honoured only in the Testing environment.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CrashRecoveryTests : IAsyncLifetime
{
    private PostgresServer _pg = null!;
    private TestDirectory _directory = null!;

    public async Task InitializeAsync()
    {
        _pg = await PostgresServer.StartAsync();
        await RotationFixture.PrepareDatabaseAsync(_pg);
        _directory = new TestDirectory();
        _directory.WriteFile("secrets.yaml", RotationFixture.SecretsFile(_pg.Port));
        _directory.WriteFile("policy.yaml", RotationFixture.Policy);
    }

    public async Task DisposeAsync()
    {
        await _pg.DisposeAsync();
        _directory.Dispose();
    }

    private ExternalProcess StartBroker(int? crashAfterStep, string environment = "Testing") =>
        RotationFixture.StartExternalBroker(_directory, RotationFixture.Configuration(), crashAfterStep, environment);

    private static BrokerClient Client(Uri address) => RotationFixture.Client(address);

    [Theory]
    [InlineData("demo/db/single", 1)]
    [InlineData("demo/db/single", 2)]
    [InlineData("demo/db/single", 3)]
    [InlineData("demo/db/single", 4)]
    [InlineData("demo/db/alt", 1)]
    [InlineData("demo/db/alt", 2)]
    [InlineData("demo/db/alt", 3)]
    [InlineData("demo/db/alt", 4)]
    public async Task A_rotation_killed_after_any_step_finishes_on_restart_and_the_stored_current_always_logs_in(string path, int step)
    {
        await using (var crashing = StartBroker(step))
        {
            var client = Client(await crashing.WaitForListeningAddressAsync());
            var error = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync(path));
            Assert.Contains(error.StatusCode, (StatusCode[])[StatusCode.Unavailable, StatusCode.Internal, StatusCode.Cancelled]);
            // Killed by SIGKILL (128 + 9): its own log line may not reach the console before it dies.
            Assert.Equal(137, await crashing.WaitForExitAsync());
        }

        await using var restarted = StartBroker(crashAfterStep: null);
        var again = Client(await restarted.WaitForListeningAddressAsync());
        // Recovery runs by itself at start: the interrupted rotation is finished (rolled forward), one new version.
        await Eventually.WaitUntilAsync(async () =>
        {
            var record = await again.GetSecretAsync(path + ".rotation-pending", bypassCache: true);
            return record.Data["_rotation_state"] == "done";
        }, TimeSpan.FromSeconds(60), "the pending record closed by recovery");
        var current = await again.GetSecretAsync(path, bypassCache: true);
        Assert.Equal("2", current.Version);
        Assert.True(await _pg.CanLogInAsync(current.Data["username"], current.Data["password"]), "the stored current logs in after recovery");
        var previous = await again.GetSecretAsync(path, version: "1");
        if (path.EndsWith("alt", StringComparison.Ordinal))
        {
            // Alternating users never touch the role in use: the previous credentials work throughout.
            Assert.True(await _pg.CanLogInAsync(previous.Data["username"], previous.Data["password"]));
        }
        // And the next rotation runs normally.
        var next = await again.RotateSecretAsync(path);
        Assert.Equal("3", next.Version);
    }

    [Fact]
    public async Task The_crash_switch_is_inert_outside_the_testing_environment()
    {
        await using var broker = StartBroker(crashAfterStep: 1, environment: "Production");
        var client = Client(await broker.WaitForListeningAddressAsync());
        var rotated = await client.RotateSecretAsync("demo/keys/ci");
        Assert.Equal("2", rotated.Version);
        Assert.False(broker.HasExited);
    }
}
