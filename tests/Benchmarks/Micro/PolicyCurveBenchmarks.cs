using System.Text;
using BenchmarkDotNet.Attributes;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// The policy cost curve (docs/benchmarks.md "Cost curves"): one allowed read checked against 10 and 10,000 per-team
/// policies with identity templates. <c>Indexed</c> is the broker's check; <c>Scan</c> is the check as it was before
/// the index (every policy's appliesTo, then its rules: PolicySet.IsAllowed before commit "policy check visits only
/// the policies that can apply"), kept here as the reference.
/// </summary>
[MemoryDiagnoser]
public class PolicyCurveBenchmarks
{
    private readonly CallerIdentity _caller = new("trainer", "dev-token", new Dictionary<string, string>(StringComparer.Ordinal) { ["team"] = "team-00005" });
    private PolicySet _policies = null!;

    [Params(10, 10_000)]
    public int Policies { get; set; }

    /// <summary>The policy file of the curve; tests/Benchmarks/curves.py writes the same one.</summary>
    public static string TeamPolicies(int teams)
    {
        var text = new StringBuilder("""
            policies:
              - name: platform-admins
                appliesTo: { subjects: [admin] }
                rules:
                  - paths: ["**"]
                    capabilities: [read, list]
              - name: break-glass
                rules:
                  - paths: ["bench/break-glass/**"]
                    capabilities: [read]
                    effect: deny

            """);
        for (var i = 0; i < teams; i++)
        {
            text.Append($$$"""
                  - name: team-{{{i:D5}}}
                    appliesTo: { attributes: { team: team-{{{i:D5}}} } }
                    rules:
                      - paths: ["bench/{{identity.team}}/**", "bench/*"]
                        capabilities: [read, list]
                      - paths: ["bench/{{identity.team}}/frozen/**"]
                        capabilities: [read]
                        effect: deny

                """);
        }
        return text.ToString();
    }

    [GlobalSetup]
    public void Setup() => _policies = PolicySet.Parse(TeamPolicies(Policies), isYaml: true);

    [Benchmark]
    public bool Indexed() => _policies.IsAllowed(_caller, Capability.Read, "bench/s000");

    [Benchmark(Baseline = true)]
    public bool Scan()
    {
        var granted = false;
        string[]? segments = null;
        foreach (var policy in _policies.Policies)
        {
            if (!policy.AppliesTo(_caller))
            {
                continue;
            }
            foreach (var rule in policy.Rules)
            {
                if ((rule.Capabilities & Capability.Read) == 0 || (granted && !rule.Deny) || !rule.Matches(segments ??= "bench/s000".Split('/'), _caller))
                {
                    continue;
                }
                if (rule.Deny)
                {
                    return false;
                }
                granted = true;
            }
        }
        return granted;
    }
}
