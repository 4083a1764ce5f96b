using System.Text.Json;
using System.Text.Json.Serialization;
using SecretsBroker.Broker.Auth;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace SecretsBroker.Broker.Policy;

/// <summary>
/// The parsed policy file. Every policy names who it applies to and rules of capabilities on path
/// patterns. A request is allowed when some applicable rule grants the capability on the path and no
/// applicable deny rule matches it; anything else is denied.
/// </summary>
public sealed class PolicySet(IReadOnlyList<CompiledPolicy> policies)
{
    private readonly CompiledPolicy[] _policies = [.. policies];
    private readonly PolicyIndex _index = new(policies);

    public IReadOnlyList<CompiledPolicy> Policies => _policies;

    /// <summary>Deny by default: allowed when an applicable rule grants the capability and no applicable deny rule matches.</summary>
    public bool IsAllowed(CallerIdentity identity, Capability capability, string path) => _index.IsAllowed(identity, capability, path);

    /// <summary>How many policies a check for <paramref name="identity"/> visits, out of <see cref="Policies"/>.</summary>
    public int CandidateCount(CallerIdentity identity) => _index.CandidateCount(identity);

    /// <summary>Parses a policy file (YAML by extension .yaml/.yml, else JSON). Errors name the policy and rule by number.</summary>
    public static PolicySet Parse(string content, bool isYaml)
    {
        PolicyFileModel? model;
        try
        {
            model = isYaml
                ? new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build().Deserialize<PolicyFileModel?>(content)
                : JsonSerializer.Deserialize(content, PolicyFileJsonContext.Default.PolicyFileModel);
        }
        catch (YamlException ex)
        {
            throw new FormatException($"not valid YAML of the expected shape (line {ex.Start.Line}, column {ex.Start.Column})");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not valid JSON of the expected shape (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})");
        }
        if (model?.Policies is not { Count: > 0 })
        {
            throw new FormatException("the file has no 'policies' list; an empty policy denies everything, so it is refused as a likely mistake");
        }

        var compiled = new List<CompiledPolicy>();
        for (var p = 0; p < model.Policies.Count; p++)
        {
            var policy = model.Policies[p] ?? throw new FormatException($"policy {p + 1} is empty");
            var name = string.IsNullOrWhiteSpace(policy.Name) ? $"#{p + 1}" : policy.Name;
            if (policy.Rules is not { Count: > 0 })
            {
                throw new FormatException($"policy '{name}' has no rules");
            }
            var rules = new List<CompiledRule>();
            for (var r = 0; r < policy.Rules.Count; r++)
            {
                var where = $"policy '{name}', rule {r + 1}";
                var rule = policy.Rules[r] ?? throw new FormatException($"{where} is empty");
                if (rule.Paths is not { Count: > 0 })
                {
                    throw new FormatException($"{where} has no 'paths'");
                }
                var capabilities = Capability.None;
                foreach (var capability in rule.Capabilities ?? [])
                {
                    capabilities |= capability?.ToLowerInvariant() switch
                    {
                        "read" => Capability.Read,
                        "list" => Capability.List,
                        "issue" => Capability.Issue,
                        "renew" => Capability.Renew,
                        "revoke" => Capability.Revoke,
                        "watch" => Capability.Watch,
                        "write" => Capability.Write,
                        "rotate" => Capability.Rotate,
                        "encrypt" => Capability.Encrypt,
                        "decrypt" => Capability.Decrypt,
                        "datakey" => Capability.DataKey,
                        _ => throw new FormatException($"{where}: '{capability}' is not a capability; use read, list, issue, renew, revoke, watch, write, rotate, encrypt, decrypt, datakey"),
                    };
                }
                if (capabilities == Capability.None)
                {
                    throw new FormatException($"{where} has no 'capabilities'");
                }
                var deny = rule.Effect?.ToLowerInvariant() switch
                {
                    null or "allow" => false,
                    "deny" => true,
                    _ => throw new FormatException($"{where}: effect must be 'allow' or 'deny'"),
                };
                try
                {
                    rules.Add(new CompiledRule([.. rule.Paths.Select(PathPattern.Parse)], capabilities, deny));
                }
                catch (FormatException ex)
                {
                    throw new FormatException($"{where}: {ex.Message}");
                }
            }
            compiled.Add(new CompiledPolicy(name, SubjectMatcher.Create(policy.AppliesTo), [.. rules]));
        }
        return new PolicySet(compiled);
    }
}

public sealed record CompiledRule(PathPattern[] Patterns, Capability Capabilities, bool Deny)
{
    // Loops rather than LINQ: this runs for every rule of every read.
    public bool Matches(string[] pathSegments, CallerIdentity identity)
    {
        foreach (var pattern in Patterns)
        {
            if (pattern.Matches(pathSegments, identity))
            {
                return true;
            }
        }
        return false;
    }
}

public sealed record CompiledPolicy(string Name, SubjectMatcher AppliesToMatcher, CompiledRule[] Rules)
{
    public bool AppliesTo(CallerIdentity identity) => AppliesToMatcher.Matches(identity);
}

/// <summary>Who a policy applies to: every condition given must hold; none given means every authenticated caller.</summary>
public sealed class SubjectMatcher
{
    private readonly string[]? _subjects;
    private readonly string[]? _authMethods;
    private readonly Dictionary<string, string>? _attributes;

    private SubjectMatcher(string[]? subjects, string[]? authMethods, Dictionary<string, string>? attributes)
    {
        _subjects = subjects;
        _authMethods = authMethods;
        _attributes = attributes;
    }

    /// <summary>The subject globs, or null when any subject will do (read by <see cref="PolicyIndex"/>).</summary>
    internal string[]? Subjects => _subjects;

    internal string[]? AuthMethods => _authMethods;

    internal IReadOnlyDictionary<string, string>? Attributes => _attributes;

    public static SubjectMatcher Create(AppliesToModel? model) =>
        new(model?.Subjects is { Count: > 0 } s ? [.. s] : null, model?.AuthMethods is { Count: > 0 } m ? [.. m] : null,
            model?.Attributes is { Count: > 0 } a ? a : null);

    public bool Matches(CallerIdentity identity)
    {
        if (_subjects is not null && !AnyGlobMatches(_subjects, identity.Subject))
        {
            return false;
        }
        if (_authMethods is not null && Array.IndexOf(_authMethods, identity.AuthMethod) < 0)
        {
            return false;
        }
        if (_attributes is not null)
        {
            foreach (var (name, expected) in _attributes)
            {
                if (!identity.Attributes.TryGetValue(name, out var value) || value != expected)
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static bool AnyGlobMatches(string[] patterns, string value)
    {
        foreach (var pattern in patterns)
        {
            if (Glob(pattern, value))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>'*' matches any run of characters (including '/'), everything else literally.</summary>
    private static bool Glob(string pattern, string value)
    {
        var star = pattern.IndexOf('*');
        if (star < 0)
        {
            return pattern == value;
        }
        var head = pattern[..star];
        if (!value.StartsWith(head, StringComparison.Ordinal))
        {
            return false;
        }
        var rest = pattern[(star + 1)..];
        for (var i = head.Length; i <= value.Length; i++)
        {
            if (Glob(rest, value[i..]))
            {
                return true;
            }
        }
        return false;
    }
}

public sealed class PolicyFileModel
{
    public List<PolicyModel?>? Policies { get; set; }
}

public sealed class PolicyModel
{
    public string? Name { get; set; }

    public AppliesToModel? AppliesTo { get; set; }

    public List<RuleModel?>? Rules { get; set; }
}

public sealed class AppliesToModel
{
    public List<string>? Subjects { get; set; }

    public List<string>? AuthMethods { get; set; }

    public Dictionary<string, string>? Attributes { get; set; }
}

public sealed class RuleModel
{
    public List<string>? Paths { get; set; }

    public List<string?>? Capabilities { get; set; }

    public string? Effect { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(PolicyFileModel))]
internal sealed partial class PolicyFileJsonContext : JsonSerializerContext;
