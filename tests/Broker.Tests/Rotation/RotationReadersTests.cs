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

    private async Task<(int Logins, List<TimeSpan> Failures, TimeSpan[] RotationEnds)> ReadWhileRotatingAsync(string path, int rotations)
    {
        var client = _broker.CreateClient();
        var clock = Stopwatch.StartNew();
        var failures = new ConcurrentBag<TimeSpan>();
        var logins = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, Readers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var secret = await client.GetSecretAsync(path);
                try
                {
                    await using var connection = new NpgsqlConnection(_pg.ConnectionString(secret.Data["username"], secret.Data["password"]));
                    await connection.OpenAsync();
                    Interlocked.Increment(ref logins);
                }
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.InvalidPassword)
                {
                    failures.Add(clock.Elapsed);
                }
            }
        })).ToArray();
        // Readers running before the first rotation.
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref logins) >= Readers, TimeSpan.FromSeconds(60), "every reader logged in once");
        var ends = new TimeSpan[rotations];
        for (var i = 0; i < rotations; i++)
        {
            var before = Volatile.Read(ref logins);
            await client.RotateSecretAsync(path);
            ends[i] = clock.Elapsed;
            // Readers log in with the new version before the next rotation (each credential lives one rotation period).
            await Eventually.WaitUntilAsync(() => Volatile.Read(ref logins) >= before + 2 * Readers, TimeSpan.FromSeconds(60), "readers logged in after the rotation");
        }
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        return (logins, [.. failures.Order()], ends);
    }

    [Fact]
    public async Task Alternating_users_rotations_cost_readers_no_failed_login()
    {
        var (logins, failures, _) = await ReadWhileRotatingAsync("demo/db/alt", rotations: 3);
        output.WriteLine($"alternating users: {logins} logins by {Readers} readers over 3 rotations, {failures.Count} failed");
        Assert.Empty(failures);
        Assert.True(logins > 3 * Readers);
    }

    [Fact]
    public async Task Single_user_rotation_failure_window_is_measured_and_bounded()
    {
        var (logins, failures, ends) = await ReadWhileRotatingAsync("demo/db/single", rotations: 3);
        var window = failures.Count == 0 ? TimeSpan.Zero : failures[^1] - failures[0];
        output.WriteLine($"single user: {logins} logins by {Readers} readers over 3 rotations, {failures.Count} failed logins; " +
            $"failures from {failures.FirstOrDefault().TotalMilliseconds:0} ms to {failures.LastOrDefault().TotalMilliseconds:0} ms; rotations answered at " +
            string.Join(", ", ends.Select(e => $"{e.TotalMilliseconds:0} ms")));
        // Every failure is a reader holding the previous password between ALTER ROLE and its next read: none come later
        // than a short while after the rotation that caused it answered (the cache was dropped before the answer).
        foreach (var failure in failures)
        {
            Assert.Contains(ends, end => failure <= end + TimeSpan.FromSeconds(5) && failure >= end - TimeSpan.FromSeconds(30));
        }
    }
}
