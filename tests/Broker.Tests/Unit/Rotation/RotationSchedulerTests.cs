using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Rotation;

namespace SecretsBroker.Broker.Tests.Unit.Rotation;

/// <summary>
/// The rotation scheduler's passes on a fake clock, over a versioned store whose versions carry their creation time: when a
/// secret is due, the window, the jitter, restarts, and failing rotations with backoff.
/// </summary>
public sealed class RotationSchedulerTests
{
    private const string Name = "keys/a";
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static (FakeTimeProvider Time, VersionedMemoryStore Store) Seed(DateTimeOffset? created = null)
    {
        var time = new FakeTimeProvider(Start);
        var store = new VersionedMemoryStore(time);
        store.Put(Name, new Dictionary<string, string> { ["api_key"] = "FAKE-initial", ["owner"] = "team-alpha" }, created ?? Start);
        return (time, store);
    }

    private static int Rotations(VersionedMemoryStore store) => store.Versions(Name).Count - 1;

    [Fact]
    public async Task A_secret_is_due_every_after_its_current_versions_creation_time_in_the_backend()
    {
        var (time, store) = Seed(created: Start - TimeSpan.FromHours(20));
        await using var rig = new RotationRig(time, store, every: "1d");

        // Created 20 h before the broker's first pass: due 4 h later, not a full day after the broker started.
        time.Advance(TimeSpan.FromHours(4) - TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(0, Rotations(store));
        time.Advance(TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(1, Rotations(store));
        Assert.NotEqual("FAKE-initial", store.Versions(Name)[^1].Data!["api_key"]);
        Assert.Equal("team-alpha", store.Versions(Name)[^1].Data!["owner"]);

        // The next due time counts from the new version's creation time.
        time.Advance(TimeSpan.FromDays(1) - TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(1, Rotations(store));
        time.Advance(TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(2, Rotations(store));
    }

    [Fact]
    public async Task A_due_secret_waits_for_the_window_and_rotates_when_it_opens()
    {
        // Due at 01:00 (created 00:00, every 1 h), window 02:00-04:00 UTC.
        var (time, store) = Seed();
        await using var rig = new RotationRig(time, store, every: "1h", window: "02:00-04:00");

        time.Advance(TimeSpan.FromHours(1));
        await rig.PassAsync();
        time.Advance(TimeSpan.FromMinutes(59));
        await rig.PassAsync();
        Assert.Equal(0, Rotations(store));

        time.Advance(TimeSpan.FromMinutes(1));
        await rig.PassAsync();
        Assert.Equal(1, Rotations(store));
        Assert.Equal(Start.AddHours(2), store.Versions(Name)[^1].CreatedAt);

        // Due again at 03:00 (inside), then at 04:00: the window has closed, so the next opening, 02:00 the next day.
        time.Advance(TimeSpan.FromHours(1));
        await rig.PassAsync();
        Assert.Equal(2, Rotations(store));
        time.Advance(TimeSpan.FromHours(1));
        await rig.PassAsync();
        time.Advance(TimeSpan.FromHours(21) + TimeSpan.FromMinutes(59));
        await rig.PassAsync();
        Assert.Equal(2, Rotations(store));
        time.Advance(TimeSpan.FromMinutes(1));
        await rig.PassAsync();
        Assert.Equal(3, Rotations(store));
    }

    [Fact]
    public async Task Jitter_delays_a_rotation_by_at_most_the_configured_jitter()
    {
        var jitter = TimeSpan.FromMinutes(30);
        var share = RotationScheduler.JitterFor("mem/" + Name, jitter);
        Assert.InRange(share, TimeSpan.Zero, jitter);
        // Over many paths the shares stay inside [0, jitter) and spread over it.
        var shares = Enumerable.Range(0, 500).Select(i => RotationScheduler.JitterFor($"mem/keys/s{i}", jitter)).ToList();
        Assert.All(shares, s => Assert.InRange(s, TimeSpan.Zero, jitter - TimeSpan.FromTicks(1)));
        Assert.True(shares.Max() - shares.Min() > jitter * 0.9, "shares spread over the jitter");

        var (time, store) = Seed();
        await using var rig = new RotationRig(time, store, every: "1h", jitter: jitter);
        time.Advance(TimeSpan.FromHours(1) + share - TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(0, Rotations(store));
        time.Advance(TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(1, Rotations(store));
    }

    [Fact]
    public async Task A_restart_neither_repeats_nor_skips_a_rotation()
    {
        var (time, store) = Seed();
        await using (var before = new RotationRig(time, store, every: "1d"))
        {
            time.Advance(TimeSpan.FromDays(1));
            await before.PassAsync();
            Assert.Equal(1, Rotations(store));
        }

        // Restarted a minute later: the due time comes from the store, so nothing is rotated again...
        await using (var restarted = new RotationRig(time, store, every: "1d"))
        {
            time.Advance(TimeSpan.FromMinutes(1));
            await restarted.PassAsync();
            await restarted.PassAsync();
            Assert.Equal(1, Rotations(store));
        }

        // ...and a broker down over a due time rotates once on its first pass after it comes back, not more.
        time.Advance(TimeSpan.FromDays(3));
        await using var late = new RotationRig(time, store, every: "1d");
        await late.PassAsync();
        Assert.Equal(2, Rotations(store));
        time.Advance(TimeSpan.FromMinutes(1));
        await late.PassAsync();
        Assert.Equal(2, Rotations(store));
    }

    [Fact]
    public async Task A_failing_rotation_keeps_the_current_version_and_is_retried_only_after_its_backoff_doubling()
    {
        var (time, store) = Seed();
        await using var rig = new RotationRig(time, store, every: "1h", retryBase: TimeSpan.FromMinutes(10));
        store.WritesDown = true;

        time.Advance(TimeSpan.FromHours(1));
        await rig.PassAsync();
        Assert.Equal(1, store.WriteAttempts);
        Assert.Equal(0, Rotations(store));
        var failure = Assert.Single(rig.Metrics.Failing.Values);
        Assert.Equal((1, "UNAVAILABLE", time.GetUtcNow() + TimeSpan.FromMinutes(10)), (failure.Attempts, failure.Status, failure.NextAttempt));

        // Passes every minute inside the backoff do not try again, although the secret is still due.
        for (var minute = 1; minute < 10; minute++)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            await rig.PassAsync();
        }
        Assert.Equal(1, store.WriteAttempts);
        time.Advance(TimeSpan.FromMinutes(1));
        await rig.PassAsync();
        Assert.Equal(2, store.WriteAttempts);
        // The second failure doubles the backoff.
        Assert.Equal((2, time.GetUtcNow() + TimeSpan.FromMinutes(20)), (rig.Metrics.Failing.Values.Single().Attempts, rig.Metrics.Failing.Values.Single().NextAttempt));
        Assert.Equal("FAKE-initial", store.Versions(Name)[^1].Data!["api_key"]);

        // The store is back: the retry at the end of the backoff succeeds and clears the failure.
        store.WritesDown = false;
        time.Advance(TimeSpan.FromMinutes(19));
        await rig.PassAsync();
        Assert.Equal(0, Rotations(store));
        time.Advance(TimeSpan.FromMinutes(1));
        await rig.PassAsync();
        Assert.Equal(1, Rotations(store));
        Assert.Empty(rig.Metrics.Failing);
    }
}
