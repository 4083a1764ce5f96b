using CsCheck;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Policy;

public sealed class PathPatternTests
{
    private static readonly CallerIdentity Alpha = new("system:serviceaccount:team-alpha:trainer", "jwt",
        new Dictionary<string, string> { ["namespace"] = "team-alpha", ["team"] = "alpha" });

    [Theory]
    [InlineData("kv/teams/alpha/db", "kv/teams/alpha/db", true)]
    [InlineData("kv/teams/alpha/db", "kv/teams/alpha/db2", false)]
    [InlineData("kv/teams/*/db", "kv/teams/alpha/db", true)]
    [InlineData("kv/teams/*/db", "kv/teams/alpha/x/db", false)]
    [InlineData("kv/teams/*", "kv/teams", false)]
    [InlineData("kv/teams/**", "kv/teams/alpha/x/y/db", true)]
    [InlineData("kv/teams/**", "kv/teams", true)]
    [InlineData("kv/teams/**", "kv/teamsx/a", false)]
    [InlineData("kv/**/db", "kv/teams/alpha/db", true)]
    [InlineData("kv/**/db", "kv/db", true)]
    [InlineData("kv/**/db", "kv/teams/alpha/dbx", false)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("kv/team-*/db", "kv/team-alpha/db", true)]
    [InlineData("kv/team-*/db", "kv/teamalpha/db", false)]
    [InlineData("kv/*-prod/*", "kv/ml-prod/x", true)]
    [InlineData("kv/*-prod/*", "kv/ml-prod-2/x", false)]
    [InlineData("kv/teams/{{identity.namespace}}/**", "kv/teams/team-alpha/db", true)]
    [InlineData("kv/teams/{{identity.namespace}}/**", "kv/teams/team-beta/db", false)]
    [InlineData("kv/teams/{{identity.namespace}}/**", "kv/teams/team-alpha-evil/db", false)]
    [InlineData("kv/{{identity.team}}-*/x", "kv/alpha-prod/x", true)]
    [InlineData("kv/{{identity.team}}-*/x", "kv/beta-prod/x", false)]
    [InlineData("kv/{{ identity.subject }}/x", "kv/system:serviceaccount:team-alpha:trainer/x", false)]
    [InlineData("kv/{{identity.missing}}/**", "kv/x/y", false)]
    [InlineData("kv/by-method/{{identity.auth_method}}", "kv/by-method/jwt", true)]
    public void Patterns_match_as_the_table_says(string pattern, string path, bool expected) =>
        Assert.Equal(expected, PathPattern.Parse(pattern).Matches(path, Alpha));

    [Theory]
    [InlineData("*")]
    [InlineData("**")]
    [InlineData("team-alpha/../team-beta")]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("")]
    [InlineData("team-beta/x")]
    [InlineData("team beta")]
    [InlineData("team-*")]
    public void A_template_value_that_is_not_one_plain_segment_matches_nothing(string hostile)
    {
        var identity = new CallerIdentity("s", "jwt", new Dictionary<string, string> { ["namespace"] = hostile });
        var pattern = PathPattern.Parse("kv/teams/{{identity.namespace}}/**");

        Assert.False(pattern.Matches("kv/teams/team-beta/db", identity));
        Assert.False(pattern.Matches("kv/teams/team-alpha/db", identity));
        Assert.False(pattern.Matches("kv/teams/*/db", identity));
    }

    [Theory]
    [InlineData("", "must not be empty")]
    [InlineData("kv//x", "empty segment")]
    [InlineData("kv/../x", "'.' or '..'")]
    [InlineData("kv/{{identity.namespace}", "without a closing")]
    [InlineData("kv/{{namespace}}", "is not a template")]
    [InlineData("kv/a b", "outside the path alphabet")]
    public void Broken_patterns_are_rejected_with_a_reason(string pattern, string expected) =>
        Assert.Contains(expected, Assert.Throws<FormatException>(() => PathPattern.Parse(pattern)).Message);

    [Fact]
    public void No_rendered_namespace_pattern_ever_matches_a_path_outside_that_namespace()
    {
        var segmentChar = Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-._*/+=@, {}"];
        var attribute = Gen.String[segmentChar, 0, 12];
        var pathSegment = Gen.OneOf(Gen.String[Gen.Char["abcz09-._"], 1, 8], attribute.Where(a => LogicalPath.Validate(a) is null && !a.Contains('/')));
        var path = pathSegment.Array[1, 5].Select(segments => "kv/teams/" + string.Join('/', segments));
        var pattern = PathPattern.Parse("kv/teams/{{identity.namespace}}/**");

        Gen.Select(attribute, path).Sample((ns, candidate) =>
        {
            var identity = new CallerIdentity("s", "jwt", new Dictionary<string, string> { ["namespace"] = ns });
            if (LogicalPath.Validate(candidate) is not null || !pattern.Matches(candidate, identity))
            {
                return true;
            }
            // A match is only ever the caller's own, plain, single-segment namespace.
            return candidate.StartsWith($"kv/teams/{ns}/", StringComparison.Ordinal) || candidate == $"kv/teams/{ns}"
                ? LogicalPath.Validate(ns) is null && !ns.Contains('*') && !ns.Contains('/')
                : false;
        }, iter: 20_000);
    }
}
