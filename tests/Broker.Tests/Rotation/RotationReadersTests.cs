using System.Collections.Concurrent;
using System.Diagnostics;
using Npgsql;
using SecretsBroker.Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SecretsBroker.Broker.Tests.Rotation;

/// <summary>
/// 100 readers read the secret through the broker and log in with it to a real PostgreSQL, continuously, while the broker
/// rotates it. Alternating users: zero failed logins. Single user: the failure window is measured and reported.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RotationReadersTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Readers = 100;
    private PostgresServer _pg = null!;
    private BrokerHost _broker = null!;

    public async Task InitializeAsync()
    {
        _pg = await PostgresServer.StartAsync();
        // 100 readers log in at once, plus the broker's own logins: above PostgreSQL's default of 100 connections.
        await _pg.ExecuteAsync("ALTER SYSTEM SET max_connections = 300");
        await _pg.KillAsync();
        await _pg.RestartAsync();
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

    private async Task<(int Logins, List<FailedLogin> Failures, TimeSpan[] RotationStarts, TimeSpan[] RotationEnds)> ReadWhileRotatingAsync(string path, int rotations)
    {
        var client = _broker.CreateClient();
        var clock = Stopwatch.StartNew();
        var failures = new ConcurrentBag<FailedLogin>();
        var logins = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, Readers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // When the read was asked for: a read asked after RotateSecret answered must get the new version.
                var read = clock.Elapsed;
                var secret = await client.GetSecretAsync(path);
                try
                {
                    await using var connection = new NpgsqlConnection(_pg.ConnectionString(secret.Data["username"], secret.Data["password"]));
                    await connection.OpenAsync();
                    Interlocked.Increment(ref logins);
                }
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.InvalidPassword)
                {
                    failures.Add(new FailedLogin(read, clock.Elapsed, int.Parse(secret.Version, System.Globalization.CultureInfo.InvariantCulture)));
                }
            }
        })).ToArray();
        // Readers running before the first rotation.
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref logins) >= Readers, TimeSpan.FromSeconds(60), "every reader logged in once");
        var starts = new TimeSpan[rotations];
        var ends = new TimeSpan[rotations];
        for (var i = 0; i < rotations; i++)
        {
            var before = Volatile.Read(ref logins);
            starts[i] = clock.Elapsed;
            await client.RotateSecretAsync(path);
            ends[i] = clock.Elapsed;
            // Readers log in with the new version before the next rotation (each credential lives one rotation period).
            await Eventually.WaitUntilAsync(() => Volatile.Read(ref logins) >= before + 2 * Readers, TimeSpan.FromSeconds(60), "readers logged in after the rotation");
        }
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        return (logins, [.. failures.OrderBy(f => f.Failed)], starts, ends);
    }

    [Fact]
    public async Task Alternating_users_rotations_cost_readers_no_failed_login()
    {
        var (logins, failures, _, _) = await ReadWhileRotatingAsync("demo/db/alt", rotations: 3);
        output.WriteLine($"alternating users: {logins} logins by {Readers} readers over 3 rotations, {failures.Count} failed");
        Assert.Empty(failures);
        Assert.True(logins > 3 * Readers);
    }

    [Fact]
    public async Task Single_user_rotation_failure_window_is_measured_and_bounded()
    {
        const int rotations = 5;
        var (logins, failures, starts, ends) = await ReadWhileRotatingAsync("demo/db/single", rotations);
        output.WriteLine($"single user: {logins} logins by {Readers} readers over {rotations} rotations, {failures.Count} failed logins; load average " +
            File.ReadAllText("/proc/loadavg").Split(' ')[0]);
        for (var i = 0; i < rotations; i++)
        {
            // A rotation's failures: readers holding the version it replaced (version i + 1) who logged in after ALTER ROLE.
            var own = failures.Where(f => f.Version == i + 1).ToList();
            var window = own.Count == 0 ? TimeSpan.Zero : own[^1].Failed - own[0].Failed;
            output.WriteLine($"rotation {i + 1}: RotateSecret took {(ends[i] - starts[i]).TotalMilliseconds:0} ms, {own.Count} failed logins, " +
                $"failure window {window.TotalMilliseconds:0} ms" + (own.Count == 0 ? "" :
                $" (first failure {(own[0].Failed - starts[i]).TotalMilliseconds:0} ms after the call, last {(own[^1].Failed - ends[i]).TotalMilliseconds:0} ms " +
                $"after the answer; last stale read asked {(own.Max(f => f.Read) - ends[i]).TotalMilliseconds:0} ms after the answer)"));
            // Bounded: no failure before the rotation started, and no read asked after RotateSecret answered got the replaced
            // password (the cache entry is dropped first); what remains is reads and logins already under way at the answer.
            Assert.All(own, f => Assert.True(f.Failed >= starts[i] && f.Read <= ends[i],
                $"read {(f.Read - ends[i]).TotalMilliseconds:0} ms after the answer, failed {(f.Failed - starts[i]).TotalMilliseconds:0} ms after the call"));
            Assert.True(window <= ends[i] - starts[i] + TimeSpan.FromSeconds(5), $"rotation {i + 1}'s failure window of {window.TotalMilliseconds:0} ms");
        }
        Assert.DoesNotContain(failures, f => f.Version > rotations);
        // Single user has a real window (the reason alternating users exists): readers holding the old password fail.
        Assert.NotEmpty(failures);
    }

    public sealed record FailedLogin(TimeSpan Read, TimeSpan Failed, int Version);
}
