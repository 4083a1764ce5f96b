using Microsoft.Extensions.Configuration;
using SecretsBroker.Broker.Rotation;

namespace SecretsBroker.Broker.Tests.Unit.Rotation;

public sealed class RotationScheduleTests
{
    private static RotationRule Rule(string every, string? window = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Rotation:0:Paths"] = "db/**",
            ["Broker:Rotation:0:Strategy"] = "generated",
            ["Broker:Rotation:0:Fields:0"] = "k",
            ["Broker:Rotation:0:Every"] = every,
            ["Broker:Rotation:0:Window"] = window,
        };
        return new RotationRules(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()).All[0];
    }

    [Fact]
    public void Due_time_is_the_versions_creation_plus_every_plus_a_stable_jitter()
    {
        var created = new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);
        var jitter = TimeSpan.FromMinutes(30);
        var a = RotationScheduler.DueAt(Rule("30d"), "db/prod/a", created, jitter);
        // The same inputs give the same due time on every replica and after every restart: nothing is skipped or repeated.
        Assert.Equal(a, RotationScheduler.DueAt(Rule("30d"), "db/prod/a", created, jitter));
        Assert.InRange(a, created.AddDays(30), created.AddDays(30) + jitter);
        // Jitter spreads secrets created together.
        var dues = Enumerable.Range(0, 50).Select(i => RotationScheduler.DueAt(Rule("30d"), $"db/prod/s{i}", created, jitter)).Distinct().Count();
        Assert.True(dues > 40, $"{dues} distinct due times of 50");
    }

    [Fact]
    public void A_due_time_outside_the_window_moves_to_the_next_opening()
    {
        var created = new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);
        var due = RotationScheduler.DueAt(Rule("1d", "02:00-04:00"), "db/prod/a", created, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 3, 2, 0, 0, TimeSpan.Zero), due);
    }
}
