using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Data.Sqlite;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Infrastructure;

/// <summary>
/// The audit service as a real process (its own build output, its own appsettings.json as content root),
/// configured on the command line against a test Redis and a store file in a test folder. It can be
/// killed (SIGKILL) and started again on the same store. Both its endpoints listen on port 0; the ports
/// it got are read from its log each time it starts.
/// </summary>
public sealed class AuditServiceProcess : IAsyncDisposable
{
    public const string OperatorToken = "test-operator-token";

    private readonly List<string> _arguments;
    private ExternalProcess? _process;
    private GrpcChannel? _channel;

    public AuditServiceProcess(RedisServer redis, string storePath, string consumerName = "audit-test", IEnumerable<string>? extraArguments = null)
        : this(redis.ConnectionString, storePath, consumerName, extraArguments)
    {
    }

    /// <summary>On any Redis configuration string (a cluster's seeds, Sentinels with serviceName=).</summary>
    public AuditServiceProcess(string redisConfiguration, string storePath, string consumerName = "audit-test", IEnumerable<string>? extraArguments = null)
    {
        StorePath = storePath;
        _arguments =
        [
            RepositoryLayout.BuildOutput("services/Audit/Service", "SecretsBroker.Audit.dll"),
            "--contentRoot", Path.GetDirectoryName(RepositoryLayout.BuildOutput("services/Audit/Service", "appsettings.json"))!,
            "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:0",
            "--Kestrel:Endpoints:Metrics:Url=http://127.0.0.1:0",
            $"--Audit:Key={TestEvents.KeyBase64}",
            $"--Audit:Ingestion:Redis={redisConfiguration}",
            $"--Audit:Ingestion:ConsumerName={consumerName}",
            "--Audit:Ingestion:PollInterval=00:00:00.050",
            "--Audit:Ingestion:MaxRetryDelay=00:00:00.500",
            "--Audit:Ingestion:LagInterval=00:00:00.200",
            $"--Audit:Store:Path={storePath}",
            "--Audit:Auth:Tokens:0:Name=test-operator",
            $"--Audit:Auth:Tokens:0:Sha256={Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(OperatorToken)))}",
            .. extraArguments ?? [],
        ];
    }

    public string StorePath { get; }

    /// <summary>The gRPC port of the running process (known once <see cref="StartAsync()"/> returned).</summary>
    public int GrpcPort { get; private set; }

    /// <summary>The metrics port (HTTP/1.1) of the running process.</summary>
    public int MetricsPort { get; private set; }

    /// <summary>The command line, for running the same build in another mode (export).</summary>
    public static string Dll => RepositoryLayout.BuildOutput("services/Audit/Service", "SecretsBroker.Audit.dll");

    public IReadOnlyCollection<string> Output => _process?.Output ?? [];

    public bool HasExited => _process?.HasExited ?? true;

    /// <summary>The exit code, once the process has exited.</summary>
    public Task<int> WaitForExitAsync() => _process!.WaitForExitAsync();

    public AuditLog.AuditLogClient Client
    {
        get
        {
            _channel ??= GrpcChannel.ForAddress($"http://127.0.0.1:{GrpcPort}");
            return new AuditLog.AuditLogClient(_channel);
        }
    }

    public GrpcChannel Channel
    {
        get
        {
            _channel ??= GrpcChannel.ForAddress($"http://127.0.0.1:{GrpcPort}");
            return _channel;
        }
    }

    public static Metadata OperatorHeaders => new() { { "authorization", $"Bearer {OperatorToken}" } };

    public static async Task<AuditServiceProcess> StartAsync(RedisServer redis, string storePath, string consumerName = "audit-test",
        IEnumerable<string>? extraArguments = null)
    {
        var service = new AuditServiceProcess(redis, storePath, consumerName, extraArguments);
        await service.StartAsync();
        return service;
    }

    public static async Task<AuditServiceProcess> StartAsync(string redisConfiguration, string storePath, string consumerName = "audit-test")
    {
        var service = new AuditServiceProcess(redisConfiguration, storePath, consumerName);
        await service.StartAsync();
        return service;
    }

    /// <summary>Starts the process (again), finds its two ports and waits until its consumer runs.</summary>
    public async Task StartAsync()
    {
        StartWithoutWaiting();
        var (metrics, grpc) = await _process!.WaitForTwoEndpointsAsync("/metrics");
        (MetricsPort, GrpcPort) = (metrics.Port, grpc.Port);
        _channel?.Dispose();
        _channel = null;
        await _process.WaitForOutputAsync(line => line.Contains("Consuming audit stream", StringComparison.Ordinal));
    }

    /// <summary>Starts the process, for tests that expect it to refuse to start.</summary>
    public void StartWithoutWaiting()
    {
        _process = ExternalProcess.Start(RepositoryLayout.DotNet, _arguments,
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["DOTNET_gcServer"] = "0" });
    }

    public Task<string> WaitForOutputAsync(string contains) =>
        (_process ?? throw new InvalidOperationException("not started")).WaitForOutputAsync(line => line.Contains(contains, StringComparison.Ordinal));

    /// <summary>SIGKILL, as a crash: nothing is flushed or acknowledged on the way out.</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            _process.Kill();
            await _process.DisposeAsync();
            _process = null;
        }
    }

    /// <summary>Every stored event matching <paramref name="request"/>, paging through with after_sequence.</summary>
    public async Task<List<StoredEvent>> QueryAllAsync(QueryRequest? request = null)
    {
        var all = new List<StoredEvent>();
        var page = request?.Clone() ?? new QueryRequest();
        while (true)
        {
            using var call = Client.ServerStreaming(page);
            var count = 0;
            await foreach (var stored in call.ResponseStream.ReadAllAsync())
            {
                all.Add(stored);
                page.AfterSequence = stored.Sequence;
                count++;
            }
            if (count < (page.Limit == 0 ? 1000 : page.Limit))
            {
                return all;
            }
        }
    }

    /// <summary>How many records the store file holds, read directly with SQLite.</summary>
    public long CountStored() => Scalar<long>("SELECT COUNT(*) FROM audit_records");

    public T Scalar<T>(string sql)
    {
        using var connection = OpenStore();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), CultureInfo.InvariantCulture);
    }

    public SqliteConnection OpenStore()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = StorePath, Pooling = false, DefaultTimeout = 30 }.ToString());
        connection.Open();
        return connection;
    }

    public Task WaitUntilStoredAsync(long count, TimeSpan? timeout = null) =>
        Eventually.WaitUntilAsync(() =>
        {
            Assert.False(HasExited, "the audit service exited:\n" + string.Join('\n', Output));
            return File.Exists(StorePath) && CountStored() >= count;
        }, timeout ?? TimeSpan.FromSeconds(60), $"{count} stored events");

    public async Task<string> MetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics");
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }
}

internal static class AuditClientExtensions
{
    public static AsyncServerStreamingCall<StoredEvent> ServerStreaming(this AuditLog.AuditLogClient client, QueryRequest request) =>
        client.Query(request, AuditServiceProcess.OperatorHeaders);
}
