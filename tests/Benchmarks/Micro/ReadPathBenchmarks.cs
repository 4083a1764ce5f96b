using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker;
using SecretsBroker.V1;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// The broker composed as Program.cs does (AddBroker), in process: a local mount with the benchmark secret,
/// policy, FusionCache L1 (no Redis), metrics, strict audit through the real recorder pipeline whose stream accepts
/// and drops events. Measures one cached GetSecret through SecretReader (validate, policy, mount, cache,
/// audit event built, sealed, serialized and acknowledged), the audit event alone, and the response mapping.
/// </summary>
[MemoryDiagnoser]
public class ReadPathBenchmarks
{
    private const string Path = "bench/s000";
    private WebApplication _app = null!;
    private SecretReader _reader = null!;
    private AccessAuditor _auditor = null!;
    private AccessContext _access = null!;
    private ServedSecret _served = null!;
    private string _directory = null!;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("sb-micro-").FullName;
        File.WriteAllText(System.IO.Path.Combine(_directory, "policy.yaml"), """
            policies:
              - name: bench
                appliesTo: { subjects: [bench-user] }
                rules:
                  - paths: ["bench/{{identity.team}}-*", "bench/*"]
                    capabilities: [read, list]
            """);
        File.WriteAllText(System.IO.Path.Combine(_directory, "secrets.yaml"), """
            secrets:
              s000:
                data:
                  host: postgres.bench.invalid
                  username: bench_trainer
                  password: FAKE-bench-password-0000000000000000
            """);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production", ContentRootPath = _directory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Kestrel:EndpointDefaults:Protocols"] = "Http2",
            ["Broker:Policy:File"] = "policy.yaml",
            ["Broker:Mounts:0:Prefix"] = "bench",
            ["Broker:Mounts:0:Type"] = "local",
            ["Broker:Mounts:0:File"] = "secrets.yaml",
            ["Broker:Mounts:0:Cache:Ttl"] = "01:00:00",
            ["Broker:Audit:Strict"] = "true",
            ["Broker:Audit:Key"] = Convert.ToBase64String("FAKE-bench-audit-key-32-bytes!!!"u8),
            ["Broker:Audit:SpoolDirectory"] = "spool",
            // Metrics stay on (OpenTelemetry with the Prometheus exporter), on a port of their own.
            ["Broker:Management:Urls"] = "http://127.0.0.1:0",
        });
        builder.AddBroker();
        builder.Services.AddSingleton<IAuditStream, DiscardingAuditStream>();
        _app = builder.Build();
        _app.MapBroker();
        _app.StartAsync().GetAwaiter().GetResult();
        _reader = _app.Services.GetRequiredService<SecretReader>();
        _auditor = _app.Services.GetRequiredService<AccessAuditor>();
        var caller = new CallerIdentity("bench-user", DevTokenAuthenticationHandler.AuthMethod,
            new Dictionary<string, string>(StringComparer.Ordinal) { ["team"] = "alpha" });
        _access = new AccessContext(caller, "0HN8BENCH:00000001", "ipv4:127.0.0.1:50000", "", _auditor.Hmac("FAKE-bench-token"), 0);
        _served = CachedGetSecret().GetAwaiter().GetResult();
        if (_served.Source != ServingSource.L1)
        {
            _served = CachedGetSecret().GetAwaiter().GetResult();
        }
        if (_served.Source != ServingSource.L1)
        {
            throw new InvalidOperationException($"the warm read came from {_served.Source}, not L1");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _app.StopAsync().GetAwaiter().GetResult();
        ((IDisposable)_app).Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>One GetSecret answered from L1, as the gRPC service calls it (without the transport).</summary>
    [Benchmark]
    public Task<ServedSecret> CachedGetSecret() => _reader.GetAsync(_access, Path, VersionSelector.Latest, CancellationToken.None);

    /// <summary>The audit event of an allowed read: built, path sealed with the audit key, serialized.</summary>
    [Benchmark]
    public byte[] AuditEventBytes() => _auditor.BuildEvent(_access, AuditEntry.ForServed(AuditActions.Read, _served), null, "");

    /// <summary>The response message of a cached read, mapped and serialized (what gRPC then writes).</summary>
    [Benchmark]
    public byte[] ResponseBytes() => new GetSecretResponse { Secret = _served.ToProto() }.ToByteArray();

    private sealed class DiscardingAuditStream : IAuditStream
    {
        public bool IsConfigured => true;

        public Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken) => Task.FromResult(events.Count);
    }
}
