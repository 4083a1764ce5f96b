using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Rotation;

namespace SecretsBroker.Broker.Tests.Unit.Rotation;

public sealed class RotationRulesTests
{
    private static RotationRules Build(params (string Key, string Value)[] settings) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>("Broker:Rotation:" + s.Key, s.Value))).Build());

    [Fact]
    public void The_first_matching_rule_decides_and_a_path_without_one_has_none()
    {
        var rules = Build(("0:Paths", "demo/keys/*"), ("0:Strategy", "generated"), ("0:Fields:0", "api_key"),
            ("1:Paths", "db/**"), ("1:Strategy", "postgres"), ("1:Every", "30d"), ("1:Window", "02:00-04:00"));
        Assert.Equal("generated", rules.Find("demo/keys/ci")!.StrategyName);
        Assert.Null(rules.Find("demo/keys/ci/deeper"));
        var db = rules.Find("db/prod/app")!;
        Assert.Equal("postgres", db.StrategyName);
        Assert.Equal(TimeSpan.FromDays(30), db.Every);
        Assert.Equal(new RotationWindow(TimeSpan.FromHours(2), TimeSpan.FromHours(4)), db.Window);
        Assert.Null(rules.Find("other/x"));
    }

    [Fact]
    public void Every_problem_of_every_rule_is_named_at_start()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Build(
            ("0:Paths", "a/**"), ("0:Strategy", "magic"),
            ("1:Paths", "b/**"), ("1:Strategy", "generated"),
            ("2:Paths", "c/**"), ("2:Strategy", "postgres"), ("2:Postgres:Mode", "alternating"), ("2:Every", "soon"), ("2:Window", "2-4"),
            ("3:Paths", "d/{{identity.team}}/**"), ("3:Strategy", "generated"), ("3:Fields:0", "k"),
            ("4:Paths", "e/**"), ("4:Strategy", "generated"), ("4:Fields:0", "k"), ("4:Generator:Length", "8"), ("4:Generator:Require:0", "emoji")));
        var all = string.Join("\n", error.Failures);
        Assert.Contains("Broker:Rotation:0: Strategy 'magic' is unknown", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:1: the generated strategy needs Fields", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:2: alternating users need the rotation admin's secret", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:2: Every 'soon'", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:2: Window '2-4'", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:3: Paths must be a path glob without identity templates", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:4: Generator: Length 8 is out of range", all, StringComparison.Ordinal);
        Assert.Contains("Broker:Rotation:4: Generator: Require 'emoji' is not a class", all, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("30d", 30 * 24 * 60)]
    [InlineData("12h", 12 * 60)]
    [InlineData("90m", 90)]
    [InlineData("1.00:00:00", 24 * 60)]
    public void Every_takes_days_hours_minutes_or_a_time_span(string text, int minutes)
    {
        var failures = new List<string>();
        Assert.Equal(TimeSpan.FromMinutes(minutes), RotationRules.ParseEvery(text, "x", failures));
        Assert.Empty(failures);
    }

    [Fact]
    public void A_window_may_wrap_midnight()
    {
        var failures = new List<string>();
        var window = RotationRules.ParseWindow("23:00-01:00", "x", failures)!;
        Assert.Empty(failures);
        var day = new DateTimeOffset(2026, 12, 3, 0, 0, 0, TimeSpan.Zero);
        Assert.True(window.Contains(day.AddHours(23.5)));
        Assert.True(window.Contains(day.AddMinutes(30)));
        Assert.False(window.Contains(day.AddHours(12)));
        Assert.Equal(day.AddHours(23), window.NextOpen(day.AddHours(12)));
        Assert.Equal(day.AddMinutes(30), window.NextOpen(day.AddMinutes(30)));
    }
}
