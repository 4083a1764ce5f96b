using System.Collections.Concurrent;
using Grpc.Core;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A backend of mount type <c>memory</c> that counts every read per name, so tests can prove how
/// often the broker reached its backend. Register with <see cref="Register"/>.
/// </summary>
public sealed class InMemoryBackend : ISecretReading, ISecretListing, ISecretVersionProbe, ISecretBackendFactory, IBackendHealthProbe
{
    private readonly ConcurrentDictionary<string, SecretValue> _secrets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _reads = new(StringComparer.Ordinal);

    public string MountType => "memory";

    /// <summary>When set, every read fails UNAVAILABLE, as a backend outage would.</summary>
    public bool Down { get; set; }

    /// <summary>How long each read takes, so concurrent readers overlap (zero by default).</summary>
    public TimeSpan ReadDelay { get; set; }

    public int TotalReads => _reads.Values.Sum();

    public void Register(WebApplicationBuilder builder) => builder.Services.AddSingleton<ISecretBackendFactory>(this);

    public void Put(string name, string version, IReadOnlyDictionary<string, string> data) =>
        _secrets[name] = new SecretValue { Version = version, Data = data, CreatedAt = DateTimeOffset.UnixEpoch };

    /// <summary>Deletes a secret, as another client of the real backend would; later reads of it are NOT_FOUND.</summary>
    public void Remove(string name) => _secrets.TryRemove(name, out _);

    public int ReadsOf(string name) => _reads.GetValueOrDefault(name);

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings) => this;

    public async Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken)
    {
        _reads.AddOrUpdate(name, 1, (_, count) => count + 1);
        if (ReadDelay > TimeSpan.Zero)
        {
            await Task.Delay(ReadDelay, cancellationToken);
        }
        if (Down)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "in-memory backend is down");
        }
        return _secrets.TryGetValue(name, out var value)
            ? value
            : throw new BrokerException(BrokerErrorKind.NotFound, "secret not found");
    }

    public Task<string?> GetCurrentVersionAsync(string name, CancellationToken cancellationToken) =>
        Task.FromResult(_secrets.TryGetValue(name, out var value) ? value.Version : null);

    public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
        Task.FromResult(new SecretListingPage([.. _secrets.Keys.Order(StringComparer.Ordinal).Select(n => new SecretListingEntry(n))], null));

    /// <summary>The health probe follows <see cref="Down"/>, as a real backend's would during an outage.</summary>
    public Task<BackendProbeResult> ProbeAsync(CancellationToken cancellationToken) =>
        Task.FromResult(Down ? BackendProbeResult.Down("in-memory backend is down") : BackendProbeResult.Up());
}
