using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Rotation;

namespace SecretsBroker.Broker.Tests.Unit.Rotation;

/// <summary>
/// A writable versioned store in memory (mount type <c>versioned-memory</c>): numbered versions, each with its creation time
/// from the test's clock, as KV v2 keeps them (created_time per version), and check-and-set on writes. Lives across
/// <see cref="RotationRig"/> instances, so a test can "restart" the broker on the same store.
/// </summary>
public sealed class VersionedMemoryStore(TimeProvider time) : ISecretReading, ISecretListing, ISecretWriter, ISecretBackendFactory
{
    private readonly ConcurrentDictionary<string, List<SecretValue>> _secrets = new(StringComparer.Ordinal);

    public string MountType => "versioned-memory";

    /// <summary>When set, every write fails UNAVAILABLE (the store refuses), as an outage of the target would.</summary>
    public bool WritesDown { get; set; }

    private int _writeAttempts;

    public int WriteAttempts => Volatile.Read(ref _writeAttempts);

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings) => this;

    public void Put(string name, IReadOnlyDictionary<string, string> data, DateTimeOffset createdAt) =>
        _secrets[name] = [new SecretValue { Version = "1", Data = data, CreatedAt = createdAt }];

    public IReadOnlyList<SecretValue> Versions(string name)
    {
        var versions = _secrets[name];
        lock (versions)
        {
            return [.. versions];
        }
    }

    public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        if (!_secrets.TryGetValue(name, out var versions))
        {
            throw new BrokerException(BrokerErrorKind.NotFound, "secret not found");
        }
        lock (versions)
        {
            return Task.FromResult(selector.Version is { } wanted
                ? versions.SingleOrDefault(v => v.Version == wanted) ?? throw new BrokerException(BrokerErrorKind.NotFound, "version not found")
                : versions[^1]);
        }
    }

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
        Task.FromResult(new SecretListingPage([.. _secrets.Keys.Order(StringComparer.Ordinal).Select(n => new SecretListingEntry(n))], null));

    public Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _writeAttempts);
        if (WritesDown)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "the versioned-memory store is down");
        }
        var versions = _secrets.GetOrAdd(name, _ => []);
        lock (versions)
        {
            var current = versions.Count == 0 ? null : versions[^1].Version;
            if (!CheckAndSet.Matches(write.ExpectedVersion, current))
            {
                throw CheckAndSet.Mismatch(current);
            }
            var written = new SecretValue { Version = (versions.Count + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), Data = write.Data, CreatedAt = time.GetUtcNow() };
            versions.Add(written);
            return Task.FromResult(new WrittenVersion(written.Version, written.CreatedAt));
        }
    }
}

/// <summary>
/// The broker's rotation services composed as Program.cs composes them (AddBroker), on a fake clock, never started: no
/// listener, no hosted loop. Tests drive <see cref="RotationScheduler.RunOnceAsync"/> themselves, pass by pass.
/// </summary>
public sealed class RotationRig : IAsyncDisposable
{
    private readonly WebApplication _app;

    public RotationRig(FakeTimeProvider time, VersionedMemoryStore store, string every, string? window = null,
        TimeSpan? jitter = null, TimeSpan? retryBase = null, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:Auth:DevTokens:Tokens:0:Subject"] = "test-alpha",
            ["Broker:Auth:DevTokens:Tokens:0:Sha256"] = Infrastructure.BrokerHost.Sha256Hex(Infrastructure.BrokerHost.TestToken),
            ["Broker:Audit:Key"] = Infrastructure.BrokerHost.TestAuditKey,
            ["Broker:Mounts:0:Prefix"] = "mem",
            ["Broker:Mounts:0:Type"] = "versioned-memory",
            ["Broker:Rotation:0:Paths"] = "mem/keys/*",
            ["Broker:Rotation:0:Strategy"] = "generated",
            ["Broker:Rotation:0:Fields:0"] = "api_key",
            ["Broker:Rotation:0:Every"] = every,
            ["Broker:Rotation:0:Window"] = window,
            ["Broker:RotationEngine:Jitter"] = (jitter ?? TimeSpan.Zero).ToString("c"),
            ["Broker:RotationEngine:RetryBase"] = (retryBase ?? TimeSpan.FromMinutes(10)).ToString("c"),
            ["Broker:RotationEngine:RetryMax"] = TimeSpan.FromHours(4).ToString("c"),
        });
        builder.Configuration.AddInMemoryCollection(extra ?? new Dictionary<string, string?>());
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddSingleton<ISecretBackendFactory>(store);
        builder.AddBroker();
        _app = builder.Build();
    }

    public RotationScheduler Scheduler => _app.Services.GetRequiredService<RotationScheduler>();

    public RotationMetrics Metrics => _app.Services.GetRequiredService<RotationMetrics>();

    public IServiceProvider Services => _app.Services;

    /// <summary>One scheduler pass as the background loop runs it: under the scheduler lock (false when another replica holds it).</summary>
    public Task<bool> PassAsync() => Scheduler.RunPassAsync(CancellationToken.None);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
