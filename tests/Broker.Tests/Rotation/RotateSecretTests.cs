using System.Diagnostics.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SecretsBroker.Broker.Rotation;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>RotateSecret on a real broker (Kestrel), a writable local mount and a real PostgreSQL 15.</summary>
[Trait("Category", "Integration")]
public sealed class RotateSecretTests : IAsyncLifetime
{
    private PostgresServer _pg = null!;
    private BrokerHost _broker = null!;

    public async Task InitializeAsync()
    {
        _pg = await PostgresServer.StartAsync();
        await RotationFixture.PrepareDatabaseAsync(_pg);
        var directory = new TestDirectory();
        directory.WriteFile("secrets.yaml", RotationFixture.SecretsFile(_pg.Port));
        directory.WriteFile("policy.yaml", RotationFixture.Policy);
        _broker = await BrokerHost.StartAsync(RotationFixture.Configuration(), directory);
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        await _pg.DisposeAsync();
    }

    [Fact]
    public async Task Generated_rotation_regenerates_the_named_field_keeps_the_others_and_answers_the_new_current_version()
    {
        var client = _broker.CreateClient();
        var rotated = await client.RotateSecretAsync("demo/keys/ci");
        Assert.Equal(("demo/keys/ci", "2", "1", "generated"), (rotated.Path, rotated.Version, rotated.PreviousVersion, rotated.Strategy));
        Assert.NotNull(rotated.CreatedTime);
        var secret = await client.GetSecretAsync("demo/keys/ci");
        Assert.Equal("2", secret.Version);
        Assert.NotEqual("FAKE-old-api-key", secret.Data["api_key"]);
        Assert.Equal(32, secret.Data["api_key"].Length);
        Assert.Equal("team-alpha", secret.Data["owner"]);
        // The pending record is closed and holds no value any more.
        var record = await client.GetSecretAsync("demo/keys/ci" + SiblingRotationStore.Suffix);
        Assert.Equal("done", record.Data["_rotation_state"]);
        Assert.False(record.Data.ContainsKey("api_key"));
        _broker.Logs.AssertNoneContain([secret.Data["api_key"]]);
    }

    [Fact]
    public async Task Refusals_are_clear_a_path_without_rotate_is_denied_and_one_without_a_strategy_is_a_failed_precondition()
    {
        var client = _broker.CreateClient();
        var denied = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync("demo/other/plain"));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        var noStrategy = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync("demo/keys/ci/deeper"));
        Assert.Equal(StatusCode.FailedPrecondition, noStrategy.StatusCode);
        Assert.Contains("no rotation strategy", noStrategy.Status.Detail, StringComparison.Ordinal);
        var bad = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync("demo//x"));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal("1", (await client.GetSecretAsync("demo/other/plain")).Version);
    }

    [Fact]
    public async Task Concurrent_calls_for_one_path_run_one_rotation_and_all_get_its_result()
    {
        const string path = "demo/keys/ci";
        var client = _broker.CreateClient();
        using var joined = new MetricCollector<long>(_broker.Services.GetRequiredService<IMeterFactory>(), RotationMetrics.MeterName,
            "secretsbroker.rotation.joined");
        // The path's lock is held (as by another replica) until every call is in, so all 20 overlap whatever the scheduling.
        var held = await RotationFixture.HoldRotationLockAsync(_broker, path);
        var calls = Enumerable.Range(0, 20).Select(_ => client.RotateSecretAsync(path)).ToArray();
        await Eventually.WaitUntilAsync(() => joined.GetMeasurementSnapshot().Sum(m => m.Value) == 19, because: "19 calls join the first one's rotation");
        Assert.DoesNotContain(calls, call => call.IsCompleted);
        // Released without an outcome (a holder that went away): the waiting rotation takes the lock and runs once.
        await held.DisposeAsync();
        var results = await Task.WhenAll(calls);
        Assert.All(results, result => Assert.Equal(("2", "1"), (result.Version, result.PreviousVersion)));
        Assert.Equal("2", (await client.GetSecretAsync(path, bypassCache: true)).Version);
        Assert.Equal(19, joined.GetMeasurementSnapshot().Sum(m => m.Value));
    }

    [Fact]
    public async Task Watchers_get_the_new_version_and_no_cached_old_value_is_served_after_the_answer()
    {
        var client = _broker.CreateClient();
        var before = await client.GetSecretAsync("demo/keys/ci");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var watch = client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { "demo/keys/ci" } }, cancellationToken: cancel.Token);
        await watch.ResponseHeadersAsync;
        var rotated = await client.RotateSecretAsync("demo/keys/ci");
        // Cached before the rotation, dropped before the answer: the next read is the new version.
        var after = await client.GetSecretAsync("demo/keys/ci");
        Assert.Equal(rotated.Version, after.Version);
        Assert.NotEqual(before.Data["api_key"], after.Data["api_key"]);
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal(("demo/keys/ci", rotated.Version), (watch.ResponseStream.Current.Path, watch.ResponseStream.Current.Version));
    }

    [Fact]
    public async Task Postgres_single_user_rotation_changes_the_password_and_the_stored_current_logs_in()
    {
        var client = _broker.CreateClient();
        var rotated = await client.RotateSecretAsync("demo/db/single");
        Assert.Equal("postgres", rotated.Strategy);
        var secret = await client.GetSecretAsync("demo/db/single");
        Assert.True(await _pg.CanLogInAsync("app_single", secret.Data["password"]));
        Assert.False(await _pg.CanLogInAsync("app_single", "FAKE-single-password"));
    }

    [Fact]
    public async Task A_failing_rotation_leaves_current_untouched_and_shows_in_readiness_until_a_retry_succeeds()
    {
        var client = _broker.CreateClient();
        await _pg.KillAsync();
        var failed = await Assert.ThrowsAsync<RpcException>(() => client.RotateSecretAsync("demo/db/single"));
        Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        Assert.Equal("1", (await client.GetSecretAsync("demo/db/single", bypassCache: true)).Version);
        var metrics = _broker.Services.GetRequiredService<RotationMetrics>();
        Assert.Single(metrics.Failing);
        var health = await _broker.Services.GetRequiredService<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckService>().CheckHealthAsync();
        var rotation = health.Entries["rotation"];
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, rotation.Status);
        Assert.Contains("mount demo: 1 failing (UNAVAILABLE)", rotation.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("db/single", rotation.Description, StringComparison.Ordinal);
        // The operator's view: the management port's readiness details (still 200: degraded, the broker keeps serving).
        var (status, ready) = await _broker.GetAsync("/healthz/ready");
        Assert.Equal(200, status);
        Assert.StartsWith("Degraded", ready, StringComparison.Ordinal);
        Assert.Contains("rotation: Degraded - rotations failing: mount demo: 1 failing (UNAVAILABLE), retried with backoff", ready, StringComparison.Ordinal);
        Assert.DoesNotContain("db/single", ready, StringComparison.Ordinal);
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotations_total" && s.Has("mount", "demo") && s.Has("strategy", "postgres")
            && s.Has("outcome", "failure") && s.Value == 1, "the failure counted");
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotation_failing" && s.Value == 1, "one failing rotation");
        await _pg.RestartAsync();
        // Retried with backoff by the scheduler; RetryBase is 30 s by default, so ask once more as an operator would.
        await client.RotateSecretAsync("demo/db/single");
        Assert.Empty(metrics.Failing);
        var secret = await client.GetSecretAsync("demo/db/single", bypassCache: true);
        Assert.True(await _pg.CanLogInAsync("app_single", secret.Data["password"]));
        Assert.Contains("rotation: Healthy - no failing rotations", (await _broker.GetAsync("/healthz/ready")).Body, StringComparison.Ordinal);
        // What the dashboard's rotation row plots (deploy/grafana/dashboards/secretsbroker.json), under these names.
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotations_total" && s.Has("mount", "demo") && s.Has("strategy", "postgres")
            && s.Has("outcome", "success") && s.Value == 1, "the success counted");
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotation_last_success_seconds" && s.Has("mount", "demo")
            && Math.Abs(s.Value - DateTimeOffset.UtcNow.ToUnixTimeSeconds()) < 300, "the last success time");
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotation_failing" && s.Value == 0, "no failing rotation");
        await WaitForSampleAsync(s => s.Name == "secretsbroker_rotation_overdue" && s.Value == 0, "nothing overdue");
    }

    // Scrapes are cached for a moment: wait for the sample rather than reading one scrape.
    private Task WaitForSampleAsync(Func<MetricSample, bool> sample, string because) =>
        Eventually.WaitUntilAsync(async () => ManagementPort.Parse(await _broker.ScrapeAsync()).Any(sample), TimeSpan.FromSeconds(30), because);
}
