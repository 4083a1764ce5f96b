using System.Globalization;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Rotation;

/// <summary>A validated <c>Broker:Rotation</c> entry: the first rule whose glob matches a path rotates it.</summary>
public sealed record RotationRule(int Index, PathPattern Pattern, string StrategyName, IRotationStrategy? Strategy, TimeSpan? Every, RotationWindow? Window)
{
    public bool IsAwsManaged => StrategyName == AwsManagedStrategyName;

    public const string AwsManagedStrategyName = "aws-managed";
}

/// <summary>A daily UTC window, <c>HH:mm-HH:mm</c>; an end before the start wraps past midnight.</summary>
public sealed record RotationWindow(TimeSpan Start, TimeSpan End)
{
    public bool Contains(DateTimeOffset now)
    {
        var t = now.UtcDateTime.TimeOfDay;
        return Start <= End ? t >= Start && t < End : t >= Start || t < End;
    }

    /// <summary>The first instant at or after <paramref name="from"/> inside the window.</summary>
    public DateTimeOffset NextOpen(DateTimeOffset from)
    {
        if (Contains(from))
        {
            return from;
        }
        var day = new DateTimeOffset(from.UtcDateTime.Date, TimeSpan.Zero);
        var start = day + Start;
        return start >= from ? start : start.AddDays(1);
    }
}

/// <summary>The rotation rules from configuration, validated at start (a bad rule stops the broker with every problem named).</summary>
public sealed class RotationRules
{
    public const string SectionName = "Broker:Rotation";

    // Rules match without a caller: identity templates are not allowed in rotation globs.
    private static readonly CallerIdentity Nobody = new("", "", new Dictionary<string, string>());

    public RotationRules(IConfiguration configuration)
    {
        var failures = new List<string>();
        var rules = new List<RotationRule>();
        var index = 0;
        foreach (var section in configuration.GetSection(SectionName).GetChildren())
        {
            var where = $"{SectionName}:{section.Key}";
            var options = section.Get<RotationRuleOptions>() ?? new RotationRuleOptions();
            if (Build(index++, options, where, failures) is { } rule)
            {
                rules.Add(rule);
            }
        }
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(SectionName, typeof(RotationRules), failures);
        }
        All = rules;
    }

    public IReadOnlyList<RotationRule> All { get; }

    /// <summary>The rule of a (validated) logical path, or null when no rule names it.</summary>
    public RotationRule? Find(string path)
    {
        var segments = path.Split('/');
        return All.FirstOrDefault(r => r.Pattern.Matches(segments, Nobody));
    }

    private static RotationRule? Build(int index, RotationRuleOptions options, string where, List<string> failures)
    {
        var before = failures.Count;
        PathPattern? pattern = null;
        if (string.IsNullOrWhiteSpace(options.Paths) || options.Paths.Contains("{{", StringComparison.Ordinal))
        {
            failures.Add($"{where}: Paths must be a path glob without identity templates");
        }
        else
        {
            try
            {
                pattern = PathPattern.Parse(options.Paths);
            }
            catch (FormatException ex)
            {
                failures.Add($"{where}: Paths: {ex.Message}");
            }
        }
        var every = ParseEvery(options.Every, where, failures);
        var window = ParseWindow(options.Window, where, failures);
        IRotationStrategy? strategy = null;
        switch (options.Strategy)
        {
            case GeneratedStrategy.StrategyName:
                if (options.Fields.Count == 0 || options.Fields.Any(string.IsNullOrWhiteSpace))
                {
                    failures.Add($"{where}: the generated strategy needs Fields, the names of the fields to regenerate");
                }
                strategy = new GeneratedStrategy([.. options.Fields], Generator(options.Generator, where, failures));
                break;
            case PostgresStrategy.StrategyName:
                var pg = options.Postgres;
                if (pg.Mode is not ("single" or "alternating"))
                {
                    failures.Add($"{where}: Postgres:Mode '{pg.Mode}' is unknown; use single or alternating");
                }
                if (pg.Mode == "alternating" && LogicalPath.Validate(pg.AdminSecret, "Postgres:AdminSecret") is { } adminError)
                {
                    failures.Add($"{where}: alternating users need the rotation admin's secret: {adminError}");
                }
                if (string.IsNullOrEmpty(pg.CloneSuffix) || pg.ConnectTimeout <= TimeSpan.Zero)
                {
                    failures.Add($"{where}: Postgres:CloneSuffix must not be empty and Postgres:ConnectTimeout must be positive");
                }
                strategy = new PostgresStrategy(pg, Generator(options.Generator, where, failures));
                break;
            case RotationRule.AwsManagedStrategyName:
                break;
            default:
                failures.Add($"{where}: Strategy '{options.Strategy}' is unknown; use generated, postgres or aws-managed");
                break;
        }
        return failures.Count == before ? new RotationRule(index, pattern!, options.Strategy!, strategy, every, window) : null;
    }

    private static PasswordGenerator Generator(GeneratorPolicy policy, string where, List<string> failures)
    {
        var generator = PasswordGenerator.Create(policy, out var problems);
        failures.AddRange(problems.Select(p => $"{where}: {p}"));
        return generator;
    }

    /// <summary>Parses <c>30d</c>, <c>12h</c>, <c>90m</c>, <c>45s</c> or a TimeSpan (<c>1.00:00:00</c>).</summary>
    public static TimeSpan? ParseEvery(string? text, string where, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        TimeSpan? value = null;
        var unit = text[^1];
        if (char.IsLetter(unit) && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            value = unit switch
            {
                'd' => TimeSpan.FromDays(number),
                'h' => TimeSpan.FromHours(number),
                'm' => TimeSpan.FromMinutes(number),
                's' => TimeSpan.FromSeconds(number),
                _ => null,
            };
        }
        else if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span))
        {
            value = span;
        }
        if (value is not { } every || every < TimeSpan.FromMinutes(1))
        {
            failures.Add($"{where}: Every '{text}' is not a duration of at least a minute (use 30d, 12h, 90m)");
            return null;
        }
        return every;
    }

    public static RotationWindow? ParseWindow(string? text, string where, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var parts = text.Split('-');
        if (parts.Length == 2
            && TimeSpan.TryParseExact(parts[0].Trim(), @"hh\:mm", CultureInfo.InvariantCulture, out var start)
            && TimeSpan.TryParseExact(parts[1].Trim(), @"hh\:mm", CultureInfo.InvariantCulture, out var end)
            && start != end && start < TimeSpan.FromDays(1) && end <= TimeSpan.FromDays(1))
        {
            return new RotationWindow(start, end);
        }
        failures.Add($"{where}: Window '{text}' must be HH:mm-HH:mm in UTC, for example 02:00-04:00");
        return null;
    }
}
