using BenchmarkDotNet.Attributes;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>Policy evaluation with a templated rule, and path validation: both run on every read.</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private const string Policy = """
        policies:
          - name: platform-admins
            appliesTo: { subjects: [admin] }
            rules:
              - paths: ["**"]
                capabilities: [read, list]
          - name: team-reads-own
            appliesTo: { authMethods: [dev-token, jwt] }
            rules:
              - paths: ["kv/teams/{{identity.team}}/**", "bench/*"]
                capabilities: [read, list]
              - paths: ["kv/teams/*/break-glass/**"]
                capabilities: [read]
                effect: deny
        """;

    private readonly CallerIdentity _caller = new("trainer-7", "dev-token", new Dictionary<string, string>(StringComparer.Ordinal) { ["team"] = "alpha" });
    private PolicySet _policies = null!;

    [GlobalSetup]
    public void Setup() => _policies = PolicySet.Parse(Policy, isYaml: true);

    [Benchmark]
    public bool IsAllowedTemplated() => _policies.IsAllowed(_caller, Capability.Read, "kv/teams/alpha/ml/training-db");

    [Benchmark]
    public bool IsDeniedOtherTeam() => _policies.IsAllowed(_caller, Capability.Read, "kv/teams/beta/ml/training-db");

    [Benchmark]
    public string? ValidatePath() => LogicalPath.Validate("kv/teams/alpha/ml/training-db");
}
