using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Unit.Backends;

public sealed class ObservedCapabilitiesTests : IDisposable
{
    private static readonly MountDefinition Mount = new("db", "fake-dynamic");

    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task Lease_calls_are_measured_like_reads_with_the_mount_operation_and_outcome()
    {
        var observer = new BackendCallObserver(_services.GetRequiredService<IMeterFactory>());
        using var calls = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), BackendCallObserver.MeterName, "secretsbroker.backend.calls");
        var backend = new FakeIssuer();
        var issuer = new MountedBackend(Mount, backend, observer).Capability<ICredentialIssuing>()!;

        var issued = await issuer.IssueAsync("readonly", CancellationToken.None);
        backend.Down = true;
        await Assert.ThrowsAsync<BrokerException>(() => issuer.RenewAsync(issued.LeaseId, null, CancellationToken.None));
        await Assert.ThrowsAsync<BrokerException>(() => issuer.RevokeAsync(issued.LeaseId, CancellationToken.None));

        long Count(string operation, string outcome) => calls.GetMeasurementSnapshot()
            .Where(m => (string?)m.Tags["operation"] == operation && (string?)m.Tags["outcome"] == outcome && (string?)m.Tags["mount"] == "db")
            .Sum(m => m.Value);
        Assert.Equal(1, Count("issue", "ok"));
        Assert.Equal(1, Count("renew", "unavailable"));
        Assert.Equal(1, Count("revoke", "unavailable"));
        Assert.Equal(2, observer.ConsecutiveFailures(Mount));
    }

    [Fact]
    public void A_mounts_series_exist_at_zero_from_start_so_the_first_failure_is_an_increase()
    {
        using var calls = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), BackendCallObserver.MeterName, "secretsbroker.backend.calls");
        var observer = new BackendCallObserver(_services.GetRequiredService<IMeterFactory>());

        _ = new MountedBackend(Mount, new FakeIssuer(), observer);

        var series = calls.GetMeasurementSnapshot().Select(m => ((string?)m.Tags["operation"], (string?)m.Tags["outcome"], m.Value)).ToHashSet();
        foreach (var operation in new[] { "issue", "renew", "revoke" })
        {
            Assert.Contains((operation, "ok", 0L), series);
            Assert.Contains((operation, "unavailable", 0L), series);
        }
        Assert.DoesNotContain(series, s => s.Item1 is "get" or "list");
    }

    [Fact]
    public void A_backend_offers_only_the_capabilities_it_declares_and_the_mount_table_refuses_the_others()
    {
        var mounted = new MountedBackend(Mount, new FakeIssuer(), observer: null);

        Assert.NotNull(mounted.Capability<ICredentialIssuing>());
        Assert.Null(mounted.Capability<ISecretReading>());
        Assert.Null(mounted.Capability<ISecretListing>());
        Assert.Null(mounted.Capability<ISecretVersionProbe>());
    }

    private sealed class FakeIssuer : ICredentialIssuing
    {
        public bool Down { get; set; }

        public Task<IssuedCredentials> IssueAsync(string role, CancellationToken cancellationToken) =>
            Task.FromResult(new IssuedCredentials("database/creds/readonly/FAKE-1", new Dictionary<string, string> { ["password"] = "FAKE" },
                TimeSpan.FromHours(1), true));

        public Task<LeaseRenewal> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken) =>
            Down ? Task.FromException<LeaseRenewal>(new BrokerException(BrokerErrorKind.Unavailable, "down")) : Task.FromResult(new LeaseRenewal(TimeSpan.FromHours(1), true));

        public Task RevokeAsync(string leaseId, CancellationToken cancellationToken) =>
            Down ? Task.FromException(new BrokerException(BrokerErrorKind.Unavailable, "down")) : Task.CompletedTask;
    }
}
