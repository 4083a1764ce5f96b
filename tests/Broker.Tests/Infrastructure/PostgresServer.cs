using Npgsql;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server (Debian's postgresql package, 15 here) in a temporary data directory on a
/// loopback port, started per test or per class. PostgreSQL refuses to run as root, so when the tests
/// run as root the server runs as the <c>postgres</c> user (setpriv: the server process is the child
/// itself, so killing it kills PostgreSQL). TCP logins use SCRAM passwords, as production does; the
/// superuser <c>postgres</c> logs in with <see cref="SuperuserPassword"/>.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>The superuser's password (a test value).</summary>
    public const string SuperuserPassword = "fake-pg-superuser-password";

    private readonly TestDirectory _directory;
    private readonly string _binDirectory;
    private ExternalProcess? _process;

    private PostgresServer(TestDirectory directory, string binDirectory, int port)
    {
        _directory = directory;
        _binDirectory = binDirectory;
        Port = port;
    }

    public int Port { get; private set; }

    public string DataDirectory => Path.Combine(_directory.Path, "data");

    /// <summary>Connection string of the superuser on database <paramref name="database"/>.</summary>
    public string AdminConnectionString(string database = "postgres") =>
        ConnectionString("postgres", SuperuserPassword, database);

    /// <summary>A TCP connection string to this server (pooling off, so a changed password is tried on every open).</summary>
    public string ConnectionString(string user, string password, string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = user,
            Password = password,
            Database = database,
            Pooling = false,
            Timeout = 15,
        }.ConnectionString;

    /// <summary>Creates a data directory and starts the server; a port taken meanwhile by another process is retried on a new one.</summary>
    public static async Task<PostgresServer> StartAsync()
    {
        var binDirectory = FindBinDirectory();
        var directory = new TestDirectory();
        var server = new PostgresServer(directory, binDirectory, FreePort.Candidate());
        try
        {
            await server.InitializeAsync();
            for (var attempt = 1; ; attempt++)
            {
                var output = await server.TryStartAsync();
                if (output is null)
                {
                    return server;
                }
                Assert.True(attempt < 5, $"postgres found its port taken {attempt} times; last output:\n{output}");
                server.Port = FreePort.Candidate();
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills the server (SIGKILL to the postmaster and its backends), as a crash or an outage would.</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    /// <summary>Starts the server again on the same port and data (after <see cref="KillAsync"/>).</summary>
    public async Task RestartAsync()
    {
        var output = await TryStartAsync();
        Assert.True(output is null, $"postgres could not listen on its port {Port} again; output:\n{output}");
    }

    /// <summary>Runs SQL as the superuser (statements separated by semicolons).</summary>
    public async Task ExecuteAsync(string sql, string database = "postgres")
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString(database));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Creates a database owned by the superuser.</summary>
    public Task CreateDatabaseAsync(string name) => ExecuteAsync($"CREATE DATABASE {Quote(name)}");

    /// <summary>Creates a login role with a password (test values only).</summary>
    public async Task CreateLoginRoleAsync(string name, string password)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        // ALTER/CREATE ROLE take no bind parameters: quote_literal builds the literal server-side.
        await using var quoted = new NpgsqlCommand("SELECT quote_literal(@p)", connection);
        quoted.Parameters.AddWithValue("p", password);
        var literal = (string)(await quoted.ExecuteScalarAsync())!;
        await using var command = new NpgsqlCommand($"CREATE ROLE {Quote(name)} LOGIN PASSWORD {literal}", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>True when <paramref name="user"/> can log in over TCP with <paramref name="password"/> and run a query.</summary>
    public async Task<bool> CanLogInAsync(string user, string password, string database = "postgres")
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString(user, password, database));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            return (int)(await command.ExecuteScalarAsync())! == 1;
        }
        catch (PostgresException exception) when (exception.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _directory.Dispose();
    }

    /// <summary>A SQL identifier in double quotes.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static bool RunsAsRoot => Environment.UserName == "root";

    /// <summary>POSTGRES_BIN, else the newest /usr/lib/postgresql/N/bin (Debian keeps the server binaries off PATH).</summary>
    private static string FindBinDirectory()
    {
        var configured = Environment.GetEnvironmentVariable("POSTGRES_BIN");
        if (!string.IsNullOrEmpty(configured))
        {
            return configured;
        }
        var candidates = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "postgres")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .ToList()
            : [];
        Assert.True(candidates.Count > 0, "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install Debian's postgresql package (.ci/run does) or set POSTGRES_BIN");
        return candidates[0];
    }

    /// <summary>The command line for <paramref name="program"/>, as the postgres user when the tests run as root.</summary>
    private (string FileName, IEnumerable<string> Arguments) AsServerUser(string program, IEnumerable<string> arguments) =>
        RunsAsRoot
            ? ("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", Path.Combine(_binDirectory, program), .. arguments])
            : (Path.Combine(_binDirectory, program), arguments);

    private async Task InitializeAsync()
    {
        var passwordFile = _directory.WriteFile("superuser-password", SuperuserPassword);
        if (RunsAsRoot)
        {
            var (code, _, error) = await ExternalProcess.RunAsync("chown", ["-R", "postgres:postgres", _directory.Path]);
            Assert.True(code == 0, $"chown of the PostgreSQL test directory failed: {error}");
        }
        var (fileName, arguments) = AsServerUser("initdb",
            ["-D", DataDirectory, "-U", "postgres", $"--pwfile={passwordFile}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--locale=C", "--no-sync"]);
        var (exitCode, output, errors) = await ExternalProcess.RunAsync(fileName, arguments);
        Assert.True(exitCode == 0, $"initdb failed ({exitCode}):\n{output}\n{errors}");
        File.Delete(passwordFile);
    }

    /// <summary>Null once the server accepts connections; its output when its port was taken (any other exit fails the test).</summary>
    private async Task<string?> TryStartAsync()
    {
        var port = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // The socket directory is the data directory (owned by the server user); shared memory as files
        // there, so a killed server leaves nothing behind in /dev/shm.
        var (fileName, arguments) = AsServerUser("postgres",
            ["-D", DataDirectory, "-p", port, "-k", DataDirectory, "-c", "listen_addresses=127.0.0.1",
             "-c", "dynamic_shared_memory_type=mmap", "-c", "fsync=off", "-c", "max_connections=200", "-c", "logging_collector=off"]);
        var process = ExternalProcess.Start(fileName, arguments);
        await Eventually.WaitUntilAsync(() => process.HasExited || process.Output.Any(line => line.Contains("ready to accept connections", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), $"postgres to be ready on port {Port}");
        if (!process.HasExited)
        {
            _process = process;
            return null;
        }
        await process.WaitForExitAsync();
        var output = string.Join('\n', process.Output);
        await process.DisposeAsync();
        Assert.True(output.Contains("Address already in use", StringComparison.Ordinal) || output.Contains("could not bind", StringComparison.Ordinal),
            $"postgres exited before it was ready; output:\n{output}");
        return output;
    }
}
