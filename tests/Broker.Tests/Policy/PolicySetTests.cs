using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Tests.Policy;

public sealed class PolicySetTests
{
    private const string Policies = """
        policies:
          - name: team-namespaces
            appliesTo: { authMethods: [jwt, mtls] }
            rules:
              - paths: ["kv/teams/{{identity.namespace}}/**"]
                capabilities: [read, list]
              - paths: ["kv/teams/*/break-glass/**"]
                capabilities: [read]
                effect: deny
          - name: platform-admins
            appliesTo: { subjects: ["spiffe://cluster.local/ns/platform/*"] }
            rules:
              - paths: ["kv/**"]
                capabilities: [read, list, watch]
          - name: alpha-team-attribute
            appliesTo: { attributes: { team: alpha } }
            rules:
              - paths: ["aws/alpha/**"]
                capabilities: [read]
        """;

    private static readonly PolicySet Set = PolicySet.Parse(Policies, isYaml: true);

    private static CallerIdentity Jwt(string ns, string? team = null)
    {
        var attributes = new Dictionary<string, string> { ["namespace"] = ns };
        if (team is not null)
        {
            attributes["team"] = team;
        }
        return new CallerIdentity($"system:serviceaccount:{ns}:trainer", "jwt", attributes);
    }

    [Fact]
    public void A_grant_applies_only_to_its_own_namespace_and_capabilities()
    {
        Assert.True(Set.IsAllowed(Jwt("team-alpha"), Capability.Read, "kv/teams/team-alpha/db"));
        Assert.True(Set.IsAllowed(Jwt("team-alpha"), Capability.List, "kv/teams/team-alpha/db"));
        Assert.False(Set.IsAllowed(Jwt("team-alpha"), Capability.Watch, "kv/teams/team-alpha/db"));
        Assert.False(Set.IsAllowed(Jwt("team-alpha"), Capability.Read, "kv/teams/team-beta/db"));
    }

    [Fact]
    public void Deny_rules_override_grants_even_from_other_policies()
    {
        var admin = new CallerIdentity("spiffe://cluster.local/ns/platform/sa/ops", "mtls", new Dictionary<string, string>());
        Assert.True(Set.IsAllowed(admin, Capability.Read, "kv/teams/team-beta/db"));
        Assert.False(Set.IsAllowed(admin, Capability.Read, "kv/teams/team-beta/break-glass/root"));
        Assert.False(Set.IsAllowed(Jwt("team-alpha"), Capability.Read, "kv/teams/team-alpha/break-glass/root"));
        Assert.True(Set.IsAllowed(admin, Capability.List, "kv/teams/team-beta/break-glass/root"));
    }

    [Fact]
    public void Nothing_is_allowed_without_a_matching_grant()
    {
        var devToken = new CallerIdentity("dev", "dev-token", new Dictionary<string, string> { ["namespace"] = "team-alpha" });
        Assert.False(Set.IsAllowed(devToken, Capability.Read, "kv/teams/team-alpha/db"));
        Assert.False(Set.IsAllowed(Jwt("team-alpha"), Capability.Read, "other/mount"));
    }

    [Fact]
    public void Attribute_conditions_select_the_policy()
    {
        Assert.True(Set.IsAllowed(Jwt("ns", team: "alpha"), Capability.Read, "aws/alpha/db"));
        Assert.False(Set.IsAllowed(Jwt("ns", team: "beta"), Capability.Read, "aws/alpha/db"));
    }

    [Theory]
    [InlineData("policies: []", "no 'policies' list")]
    [InlineData("policies:\n  - name: p\n    rules: []", "policy 'p' has no rules")]
    [InlineData("policies:\n  - name: p\n    rules:\n      - paths: [\"kv/**\"]\n        capabilities: [sudo]", "policy 'p', rule 1: 'sudo' is not a capability")]
    [InlineData("policies:\n  - name: p\n    rules:\n      - paths: [\"kv/**\"]\n        capabilities: [read]\n        effect: maybe", "effect must be 'allow' or 'deny'")]
    [InlineData("policies:\n  - rules:\n      - paths: [\"kv//x\"]\n        capabilities: [read]", "policy '#1', rule 1: a path pattern has an empty segment")]
    [InlineData("policies:\n  - rules:\n      - capabilities: [read]", "has no 'paths'")]
    [InlineData("policies: [", "not valid YAML")]
    public void Broken_policy_files_are_refused_with_a_reason(string content, string expected) =>
        Assert.Contains(expected, Assert.Throws<FormatException>(() => PolicySet.Parse(content, isYaml: true)).Message);
}
