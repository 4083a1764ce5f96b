using System.Text;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Tests.Unit.Policy;

/// <summary>
/// A policy check visits only the policies that can apply to the caller (10,000 per-team policies must not be scanned
/// on every read), and answers exactly as a scan of every policy would, deny by default and deny over grant.
/// </summary>
public sealed class PolicyIndexTests
{
    private static string TeamPolicies(int teams)
    {
        var text = new StringBuilder("""
            policies:
              - name: platform-admins
                appliesTo: { subjects: [admin] }
                rules:
                  - paths: ["**"]
                    capabilities: [read, list]
              - name: everyone-shared
                rules:
                  - paths: ["kv/shared/*"]
                    capabilities: [read]
              - name: no-break-glass
                appliesTo: { authMethods: [jwt] }
                rules:
                  - paths: ["kv/teams/*/break-glass/**"]
                    capabilities: [read]
                    effect: deny

            """);
        for (var i = 0; i < teams; i++)
        {
            text.Append($$$"""
                  - name: team-{{{i:D5}}}
                    appliesTo: { attributes: { team: team-{{{i:D5}}} } }
                    rules:
                      - paths: ["kv/teams/{{identity.team}}/**", "kv/projects/{{identity.team}}-*/{{identity.subject}}/*"]
                        capabilities: [read, list]
                      - paths: ["kv/teams/{{identity.team}}/frozen/**"]
                        capabilities: [read]
                        effect: deny

                """);
        }
        return text.ToString();
    }

    private static CallerIdentity Member(int team, string subject = "trainer", string method = "jwt") =>
        new(subject, method, new Dictionary<string, string> { ["team"] = $"team-{team:D5}", ["namespace"] = "ml" });

    [Fact]
    public void With_10000_team_policies_a_check_visits_only_the_callers_own_and_the_general_ones()
    {
        var set = PolicySet.Parse(TeamPolicies(10_000), isYaml: true);

        Assert.Equal(10_003, set.Policies.Count);
        // Its team's policy, the one for everyone and the one for its auth method.
        Assert.Equal(3, set.CandidateCount(Member(4242)));
        Assert.Equal(2, set.CandidateCount(Member(4242, method: "dev-token")));
        Assert.Equal(2, set.CandidateCount(new CallerIdentity("admin", "mtls", new Dictionary<string, string>())));
    }

    [Fact]
    public void With_10000_team_policies_each_team_reads_its_own_paths_only_and_denies_still_win()
    {
        var set = PolicySet.Parse(TeamPolicies(10_000), isYaml: true);

        Assert.True(set.IsAllowed(Member(4242), Capability.Read, "kv/teams/team-04242/db"));
        Assert.True(set.IsAllowed(Member(4242, "alice"), Capability.List, "kv/projects/team-04242-vision/alice/db"));
        Assert.False(set.IsAllowed(Member(4242, "alice"), Capability.Read, "kv/projects/team-04242-vision/bob/db"));
        Assert.False(set.IsAllowed(Member(4242), Capability.Read, "kv/teams/team-04243/db"));
        Assert.False(set.IsAllowed(Member(4242), Capability.Watch, "kv/teams/team-04242/db"));
        Assert.False(set.IsAllowed(Member(4242), Capability.Read, "kv/teams/team-04242/frozen/db"));
        Assert.False(set.IsAllowed(Member(4242), Capability.Read, "kv/teams/team-04242/break-glass/root"));
        Assert.True(set.IsAllowed(Member(4242, method: "dev-token"), Capability.Read, "kv/teams/team-04242/break-glass/root"));
        Assert.True(set.IsAllowed(Member(99_999), Capability.Read, "kv/shared/ca"));
        Assert.False(set.IsAllowed(Member(99_999), Capability.Read, "kv/teams/team-99999/db"));
        Assert.True(set.IsAllowed(new CallerIdentity("admin", "mtls", new Dictionary<string, string>()), Capability.Read, "kv/teams/team-00001/db"));
    }

    [Fact]
    public void Every_kind_of_applies_to_answers_as_a_scan_of_every_policy_would()
    {
        // Literal and glob subjects, several attributes, auth methods, and none: each lands in a different group.
        var set = PolicySet.Parse("""
            policies:
              - { name: literal-subjects, appliesTo: { subjects: [alice, bob] }, rules: [{ paths: ["kv/a/**"], capabilities: [read] }] }
              - { name: glob-subject, appliesTo: { subjects: ["svc-*"] }, rules: [{ paths: ["kv/svc/*"], capabilities: [read, list] }] }
              - { name: mixed-subjects, appliesTo: { subjects: [carol, "ops-*"], authMethods: [mtls] }, rules: [{ paths: ["kv/ops/**"], capabilities: [read] }] }
              - { name: two-attributes, appliesTo: { attributes: { team: red, namespace: ml } }, rules: [{ paths: ["kv/red/**"], capabilities: [read] }] }
              - { name: attribute-and-method, appliesTo: { authMethods: [jwt], attributes: { namespace: ml } }, rules: [{ paths: ["kv/ml/{{identity.team}}/*"], capabilities: [read] }] }
              - { name: subject-and-attribute, appliesTo: { subjects: [alice], attributes: { team: blue } }, rules: [{ paths: ["kv/a/secret/*"], capabilities: [read], effect: deny }] }
              - { name: methods, appliesTo: { authMethods: [dev-token, mtls] }, rules: [{ paths: ["kv/dev/**"], capabilities: [read] }] }
              - { name: everyone, rules: [{ paths: ["kv/*/public"], capabilities: [read] }, { paths: ["kv/red/locked/**"], capabilities: [read, list], effect: deny }] }
            """, isYaml: true);
        string[] subjects = ["alice", "bob", "carol", "svc-x", "ops-1", "dave"];
        string[] methods = ["jwt", "mtls", "dev-token"];
        Dictionary<string, string>[] attributeSets =
        [
            new(), new() { ["team"] = "red" }, new() { ["team"] = "red", ["namespace"] = "ml" }, new() { ["team"] = "blue", ["namespace"] = "ml" },
            new() { ["namespace"] = "ml" }, new() { ["team"] = "blue" },
        ];
        string[] paths =
        [
            "kv/a/x", "kv/a/secret/x", "kv/svc/x", "kv/svc/x/y", "kv/ops/x", "kv/red/x", "kv/red/locked/x", "kv/ml/red/x", "kv/ml/blue/x",
            "kv/dev/x", "kv/x/public", "kv/red/public", "other/x",
        ];
        var checkedCount = 0;
        foreach (var subject in subjects)
        {
            foreach (var method in methods)
            {
                foreach (var attributes in attributeSets)
                {
                    var caller = new CallerIdentity(subject, method, attributes);
                    foreach (var path in paths)
                    {
                        foreach (var capability in new[] { Capability.Read, Capability.List })
                        {
                            Assert.True(Scan(set, caller, capability, path) == set.IsAllowed(caller, capability, path),
                                $"{subject}/{method}/{string.Join(',', attributes)} {capability} {path}");
                            checkedCount++;
                        }
                    }
                }
            }
        }
        Assert.Equal(subjects.Length * methods.Length * attributeSets.Length * paths.Length * 2, checkedCount);
    }

    /// <summary>The definition: every policy in file order, deny by default, any applicable matching deny wins.</summary>
    private static bool Scan(PolicySet set, CallerIdentity caller, Capability capability, string path)
    {
        var segments = path.Split('/');
        var applicable = set.Policies.Where(p => p.AppliesTo(caller)).SelectMany(p => p.Rules)
            .Where(r => (r.Capabilities & capability) != 0 && r.Matches(segments, caller)).ToList();
        return applicable.Count > 0 && !applicable.Any(r => r.Deny);
    }
}
