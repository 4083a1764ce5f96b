using System.Globalization;
using Npgsql;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// postgres: rotates a PostgreSQL role's password as AWS's RDS PostgreSQL rotation functions do
/// (SecretsManagerRDSPostgreSQLRotationSingleUser / MultiUser lambda_function.py: create_secret, set_secret, test_secret).
/// Secret fields: <c>username</c>, <c>password</c>, <c>host</c>, optional <c>port</c> (5432) and <c>dbname</c> (postgres).
/// Single user: the role logs in with its current password and changes its own. Alternating: the admin secret changes the
/// password of the role not in use (creating <c>{username}_clone</c> with the first role's grants the first time), and the
/// new version names that role, so credentials callers hold keep working until the next rotation.
/// </summary>
public sealed class PostgresStrategy(PostgresRotationOptions options, PasswordGenerator generator) : IRotationStrategy
{
    public const string StrategyName = "postgres";

    // PostgreSQL error codes (https://www.postgresql.org/docs/15/errcodes-appendix.html): class 28 is a refused login,
    // 3D000 a database that does not exist, 42501 a missing privilege.
    private const string InvalidPassword = "28P01";
    private const string InvalidAuthorization = "28000";

    private bool Alternating => options.Mode == "alternating";

    public string Name => StrategyName;

    public IReadOnlyDictionary<string, string> CreatePending(IReadOnlyDictionary<string, string> current)
    {
        foreach (var field in (string[])["username", "password", "host"])
        {
            if (!current.ContainsKey(field))
            {
                BrokerException.ThrowFailedPrecondition($"the secret has no '{field}' field; a postgres rotation needs username, password and host");
            }
        }
        var pending = new Dictionary<string, string>(current, StringComparer.Ordinal) { ["password"] = generator.Next() };
        if (Alternating)
        {
            pending["username"] = AlternateUser(current["username"]);
        }
        return pending;
    }

    public async Task SetAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken)
    {
        // set_secret: already set (a rotation resumed after a crash) is success.
        if (await CanLogInAsync(pending, cancellationToken).ConfigureAwait(false))
        {
            return;
        }
        // set_secret checks the current credentials first, so the broker never rotates a role whose secret it cannot prove
        // it holds (AWS: "protect against a confused deputy attack").
        if (!await CanLogInAsync(current, cancellationToken).ConfigureAwait(false))
        {
            BrokerException.ThrowFailedPrecondition("the current credentials of the secret do not log in to the database; rotation refused");
        }
        if (!Alternating)
        {
            var own = await OpenAsync(current, cancellationToken).ConfigureAwait(false);
            await using var ownDisposal = own.ConfigureAwait(false);
            await SetPasswordAsync(own, pending["username"], pending["password"], create: false, grantFrom: null, cancellationToken).ConfigureAwait(false);
            return;
        }
        var admin = await context.ReadSecretAsync(options.AdminSecret!, cancellationToken).ConfigureAwait(false);
        var connection = await OpenAsync(AdminConnection(admin, current), cancellationToken).ConfigureAwait(false);
        await using var connectionDisposal = connection.ConfigureAwait(false);
        var exists = await ScalarAsync(connection, "SELECT count(*) FROM pg_roles WHERE rolname = @name", ("name", pending["username"]), cancellationToken)
            .ConfigureAwait(false);
        await SetPasswordAsync(connection, pending["username"], pending["password"], create: Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0,
            grantFrom: current["username"], cancellationToken).ConfigureAwait(false);
    }

    public async Task TestAsync(RotationContext context, IReadOnlyDictionary<string, string> pending, CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(pending, cancellationToken).ConfigureAwait(false);
            await using var connectionDisposal = connection.ConfigureAwait(false);
        await ScalarAsync(connection, "SELECT now()", null, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> RollbackAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken)
    {
        try
        {
            // Alternating rotations never touch the role in use; a single user is rolled back by setting the current password again.
            if (Alternating || await CanLogInAsync(current, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }
            var connection = await OpenAsync(pending, cancellationToken).ConfigureAwait(false);
            await using var connectionDisposal = connection.ConfigureAwait(false);
            await SetPasswordAsync(connection, current["username"], current["password"], create: false, grantFrom: null, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (BrokerException)
        {
            return false;
        }
    }

    public string AlternateUser(string user) =>
        user.EndsWith(options.CloneSuffix, StringComparison.Ordinal) ? user[..^options.CloneSuffix.Length] : user + options.CloneSuffix;

    /// <summary>Whether these credentials log in: false when PostgreSQL refuses them, UNAVAILABLE when it cannot be reached.</summary>
    public async Task<bool> CanLogInAsync(IReadOnlyDictionary<string, string> credentials, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await OpenAsync(credentials, cancellationToken).ConfigureAwait(false);
            await using var connectionDisposal = connection.ConfigureAwait(false);
            return true;
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.FailedPrecondition)
        {
            return false;
        }
    }

    // ALTER ROLE and CREATE ROLE are utility statements: PostgreSQL takes no bind parameters in them. The server itself quotes
    // the name and the password (format's %I is quote_ident, %L is quote_literal), from bind parameters, and the broker runs the
    // statement it returns; nothing is spliced on the client. https://www.postgresql.org/docs/15/functions-string.html#FUNCTIONS-STRING-FORMAT
    private static async Task SetPasswordAsync(NpgsqlConnection connection, string role, string password, bool create, string? grantFrom,
        CancellationToken cancellationToken)
    {
        var template = create ? "CREATE ROLE %I WITH LOGIN PASSWORD %L" : "ALTER ROLE %I WITH PASSWORD %L";
        var statement = (string)(await ScalarAsync(connection, $"SELECT format('{template}', @role::text, @password::text)",
            [("role", role), ("password", password)], cancellationToken).ConfigureAwait(false))!;
        await ExecuteAsync(connection, statement, cancellationToken).ConfigureAwait(false);
        if (create && grantFrom is not null)
        {
            // AWS's multi-user function grants the first role to the clone, so both hold the same privileges.
            var grant = (string)(await ScalarAsync(connection, "SELECT format('GRANT %I TO %I', @from::text, @to::text)",
                [("from", grantFrom), ("to", role)], cancellationToken).ConfigureAwait(false))!;
            await ExecuteAsync(connection, grant, cancellationToken).ConfigureAwait(false);
        }
    }

    private NpgsqlConnectionStringBuilder ConnectionFor(IReadOnlyDictionary<string, string> fields)
    {
        var port = 5432;
        if (fields.TryGetValue("port", out var portText) && !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            BrokerException.ThrowFailedPrecondition("the secret's 'port' field is not a port number");
        }
        return new NpgsqlConnectionStringBuilder
        {
            Host = fields.GetValueOrDefault("host"),
            Port = port,
            Database = fields.GetValueOrDefault("dbname") ?? "postgres",
            Username = fields.GetValueOrDefault("username"),
            Password = fields.GetValueOrDefault("password"),
            Timeout = Math.Max(1, (int)options.ConnectTimeout.TotalSeconds),
            // Every login is a real login: a pooled connection would prove nothing about the password.
            Pooling = false,
            ApplicationName = "secretsbroker-rotation",
        };
    }

    private static Dictionary<string, string> AdminConnection(IReadOnlyDictionary<string, string> admin, IReadOnlyDictionary<string, string> current)
    {
        if (!admin.ContainsKey("username") || !admin.ContainsKey("password"))
        {
            BrokerException.ThrowFailedPrecondition("the rotation admin secret needs username and password fields");
        }
        var merged = new Dictionary<string, string>(admin, StringComparer.Ordinal);
        foreach (var field in (string[])["host", "port", "dbname"])
        {
            if (!merged.ContainsKey(field) && current.TryGetValue(field, out var value))
            {
                merged[field] = value;
            }
        }
        return merged;
    }

    private async Task<NpgsqlConnection> OpenAsync(IReadOnlyDictionary<string, string> fields, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(ConnectionFor(fields).ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw Translate(ex);
        }
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql, (string Name, string Value)[]? parameters,
        CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(sql, connection);
        await using var commandDisposal = command.ConfigureAwait(false);
        foreach (var (name, value) in parameters ?? [])
        {
            command.Parameters.AddWithValue(name, value);
        }
        try
        {
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            throw Translate(ex);
        }
    }

    private static Task<object?> ScalarAsync(NpgsqlConnection connection, string sql, (string Name, string Value) parameter, CancellationToken cancellationToken) =>
        ScalarAsync(connection, sql, [parameter], cancellationToken);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string statement, CancellationToken cancellationToken)
    {
        // No parameters: Npgsql sends the server-quoted statement as it is.
        var command = new NpgsqlCommand(statement, connection);
        await using var commandDisposal = command.ConfigureAwait(false);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            throw Translate(ex);
        }
    }

    // Messages name the failure, never the role, the host or the statement (which holds the password).
    private static BrokerException Translate(Exception ex) => ex switch
    {
        PostgresException { SqlState: InvalidPassword or InvalidAuthorization } =>
            new BrokerException(BrokerErrorKind.FailedPrecondition, "the database refused the login"),
        PostgresException pg => new BrokerException(BrokerErrorKind.FailedPrecondition, $"the database refused the statement (SQLSTATE {pg.SqlState})"),
        _ => new BrokerException(BrokerErrorKind.Unavailable, "the database could not be reached"),
    };
}
