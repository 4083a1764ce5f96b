namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>The PostgreSQL fixture itself: password logins are real, and a killed server comes back with its data.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresServerTests
{
    [Fact]
    public async Task A_role_logs_in_with_its_password_only_and_survives_a_kill_and_restart()
    {
        await using var server = await PostgresServer.StartAsync();
        await server.CreateLoginRoleAsync("app", "fake-app-password-'quoted\"");

        Assert.True(await server.CanLogInAsync("app", "fake-app-password-'quoted\""));
        Assert.False(await server.CanLogInAsync("app", "fake-wrong-password"));

        await server.KillAsync();
        await server.RestartAsync();
        Assert.True(await server.CanLogInAsync("app", "fake-app-password-'quoted\""));
    }
}
