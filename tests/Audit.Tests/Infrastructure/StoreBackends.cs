using Microsoft.Data.Sqlite;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Infrastructure;

/// <summary>One backing store for a test: opens <see cref="IAuditStore"/> instances on it and runs raw SQL (tampering, counting).</summary>
public interface IStoreBackend : IAsyncDisposable
{
    IAuditStore Open(TimeProvider? time = null);

    Task ExecuteAsync(string sql);

    Task<long> CountAsync(string sql);

    /// <summary>The command-line arguments that point an audit-service process at this store.</summary>
    IReadOnlyList<string> ServiceArguments { get; }
}

/// <summary>A SQLite file in a test folder.</summary>
public sealed class SqliteBackend : IStoreBackend
{
    private readonly TestDirectory _directory = new();

    public string FilePath => Path.Combine(_directory.Path, "audit.db");

    public IReadOnlyList<string> ServiceArguments => [$"--Audit:Store:Path={FilePath}"];

    public IAuditStore Open(TimeProvider? time = null) =>
        new AuditStore(Options.Create(new StoreOptions { Path = "audit.db" }), new Environment(_directory.Path), time ?? TimeProvider.System);

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={FilePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={FilePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Environment(string root) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Test";

        public string ApplicationName { get; set; } = "audit-tests";

        public string ContentRootPath { get; set; } = root;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}

/// <summary>A database of its own on a shared real PostgreSQL server, used through a login role that owns it (not the superuser).</summary>
public sealed class PostgresBackend : IStoreBackend
{
    private const string Password = "fake-audit-store-password";

    private PostgresBackend(PostgresServer server, string database, string role)
    {
        Server = server;
        ConnectionString = new NpgsqlConnectionStringBuilder(server.ConnectionString(role, Password, database)) { Pooling = true }.ConnectionString;
    }

    public PostgresServer Server { get; }

    public string ConnectionString { get; }

    public IReadOnlyList<string> ServiceArguments => ["--Audit:Store:Provider=postgres", $"--Audit:Store:ConnectionString={ConnectionString}"];

    public static async Task<PostgresBackend> CreateAsync(PostgresServer server)
    {
        var name = "audit_" + Guid.NewGuid().ToString("N")[..12];
        await server.CreateLoginRoleAsync(name, Password);
        await server.ExecuteAsync($"CREATE DATABASE {PostgresServer.Quote(name)} OWNER {PostgresServer.Quote(name)}");
        return new PostgresBackend(server, name, name);
    }

    public IAuditStore Open(TimeProvider? time = null) =>
        new PostgresAuditStore(Options.Create(new StoreOptions { Provider = "postgres", ConnectionString = ConnectionString }), time ?? TimeProvider.System);

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}

/// <summary>One PostgreSQL server for a test class (each test gets its own database on it).</summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    public PostgresServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await PostgresServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
