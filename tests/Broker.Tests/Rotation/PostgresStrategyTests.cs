using System.Globalization;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Rotation;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>The postgres strategy's steps against a real PostgreSQL 15: logins checked with the old and the new passwords.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresStrategyTests : IAsyncLifetime
{
    // Characters that break naive quoting: quotes, backslash (E'' strings), semicolons, dollar quotes, Npgsql's @ and $1.
    private const string HostileAlphabet = "'\"\\;$@%:{}()-abcdefghijklmnop";

    private PostgresServer _pg = null!;

    public async Task InitializeAsync() => _pg = await PostgresServer.StartAsync();

    public async Task DisposeAsync() => await _pg.DisposeAsync();

    private Dictionary<string, string> Fields(string user, string password) => new(StringComparer.Ordinal)
    {
        ["username"] = user,
        ["password"] = password,
        ["host"] = "127.0.0.1",
        ["port"] = _pg.Port.ToString(CultureInfo.InvariantCulture),
        ["dbname"] = "postgres",
        ["engine"] = "postgres",
    };

    private static PostgresStrategy Strategy(string mode, string alphabet = GeneratorPolicy.Lower + GeneratorPolicy.Digits) =>
        new(new PostgresRotationOptions { Mode = mode, AdminSecret = "admin/pg" }, PasswordGenerator.Create(new GeneratorPolicy { Length = 40, Alphabet = alphabet }, out _));

    private RotationContext Admin() => new((path, _) =>
    {
        Assert.Equal("admin/pg", path);
        return Task.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string> { ["username"] = "postgres", ["password"] = PostgresServer.SuperuserPassword });
    });

    [Fact]
    public async Task Single_user_sets_its_own_new_password_whatever_characters_the_password_and_role_name_hold()
    {
        const string role = "app \"x\"; DROP ROLE postgres; --";
        await _pg.CreateLoginRoleAsync(role, "FAKE-old-password");
        var strategy = Strategy("single", HostileAlphabet);
        var current = Fields(role, "FAKE-old-password");
        for (var i = 0; i < 5; i++)
        {
            var pending = strategy.CreatePending(current);
            Assert.Equal(role, pending["username"]);
            await strategy.SetAsync(Admin(), current, pending, CancellationToken.None);
            await strategy.TestAsync(Admin(), pending, CancellationToken.None);
            Assert.True(await _pg.CanLogInAsync(role, pending["password"]));
            Assert.False(await _pg.CanLogInAsync(role, current["password"]));
            // setSecret again (a resumed rotation) is success without a change.
            await strategy.SetAsync(Admin(), current, pending, CancellationToken.None);
            current = new Dictionary<string, string>(pending);
        }
        Assert.True(await _pg.CanLogInAsync("postgres", PostgresServer.SuperuserPassword));
    }

    [Fact]
    public async Task Alternating_users_create_the_clone_with_the_roles_grants_and_never_touch_the_role_in_use()
    {
        await _pg.CreateLoginRoleAsync("app", "FAKE-app-password");
        await _pg.ExecuteAsync("CREATE TABLE models (id int); INSERT INTO models VALUES (1); GRANT SELECT ON models TO app");
        var strategy = Strategy("alternating");
        var current = Fields("app", "FAKE-app-password");
        for (var round = 0; round < 4; round++)
        {
            var pending = strategy.CreatePending(current);
            Assert.Equal(round % 2 == 0 ? "app_clone" : "app", pending["username"]);
            await strategy.SetAsync(Admin(), current, pending, CancellationToken.None);
            await strategy.TestAsync(Admin(), pending, CancellationToken.None);
            // Both credentials work: callers holding the current one are not cut off.
            Assert.True(await _pg.CanLogInAsync(current["username"], current["password"]));
            Assert.True(await _pg.CanLogInAsync(pending["username"], pending["password"]));
            await using var connection = new Npgsql.NpgsqlConnection(_pg.ConnectionString(pending["username"], pending["password"]));
            await connection.OpenAsync();
            await using var select = new Npgsql.NpgsqlCommand("SELECT count(*) FROM models", connection);
            Assert.Equal(1L, await select.ExecuteScalarAsync());
            current = new Dictionary<string, string>(pending);
        }
    }

    [Fact]
    public async Task Credentials_that_do_not_log_in_are_not_rotated()
    {
        await _pg.CreateLoginRoleAsync("victim", "FAKE-real-password");
        var strategy = Strategy("single");
        var current = Fields("victim", "FAKE-wrong-password");
        var pending = strategy.CreatePending(current);
        var error = await Assert.ThrowsAsync<BrokerException>(() => strategy.SetAsync(Admin(), current, pending, CancellationToken.None));
        Assert.Equal(BrokerErrorKind.FailedPrecondition, error.Kind);
        Assert.DoesNotContain("victim", error.Message, StringComparison.Ordinal);
        Assert.True(await _pg.CanLogInAsync("victim", "FAKE-real-password"));
    }

    [Fact]
    public async Task A_database_that_is_down_is_unavailable_and_a_single_user_rollback_restores_the_current_password()
    {
        await _pg.CreateLoginRoleAsync("app", "FAKE-app-password");
        var strategy = Strategy("single");
        var current = Fields("app", "FAKE-app-password");
        var pending = strategy.CreatePending(current);
        await strategy.SetAsync(Admin(), current, pending, CancellationToken.None);
        Assert.True(await strategy.RollbackAsync(Admin(), current, pending, CancellationToken.None));
        Assert.True(await _pg.CanLogInAsync("app", "FAKE-app-password"));
        Assert.False(await _pg.CanLogInAsync("app", pending["password"]));

        await _pg.KillAsync();
        var error = await Assert.ThrowsAsync<BrokerException>(() => strategy.SetAsync(Admin(), current, pending, CancellationToken.None));
        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.False(await strategy.RollbackAsync(Admin(), current, pending, CancellationToken.None));
    }
}
