using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Policy;

/// <summary>
/// The policies of a file grouped by the one condition of their <c>appliesTo</c> that names a caller, so a check
/// visits the few policies that can apply to the caller instead of every policy in the file (a file of 10,000
/// per-team policies would otherwise be scanned on every read). Each policy sits in exactly one group: its
/// literal subjects if it lists only literal subjects, else one of its attributes, else its auth methods, else
/// the group checked for every caller. A caller has one subject, one value per attribute and one auth method, so
/// it reaches each policy at most once; the policy's full <see cref="SubjectMatcher"/> still decides, so the
/// index only skips policies that could not apply and the answer is the same as a scan's.
/// </summary>
internal sealed class PolicyIndex
{
    private readonly CompiledPolicy[] _everyone;
    private readonly Dictionary<string, CompiledPolicy[]> _bySubject;
    private readonly Dictionary<string, CompiledPolicy[]> _byAuthMethod;
    // Attribute name, then value. The names are few (team, namespace ...), so a check looks each one up in the
    // caller's attributes rather than enumerating them (which would allocate an enumerator per read).
    private readonly (string Name, Dictionary<string, CompiledPolicy[]> ByValue)[] _byAttribute;

    public PolicyIndex(IReadOnlyList<CompiledPolicy> policies)
    {
        var everyone = new List<CompiledPolicy>();
        var bySubject = new Dictionary<string, List<CompiledPolicy>>(StringComparer.Ordinal);
        var byAuthMethod = new Dictionary<string, List<CompiledPolicy>>(StringComparer.Ordinal);
        var byAttribute = new Dictionary<string, Dictionary<string, List<CompiledPolicy>>>(StringComparer.Ordinal);
        foreach (var policy in policies)
        {
            var matcher = policy.AppliesToMatcher;
            if (matcher.Subjects is { } subjects && Array.TrueForAll(subjects, s => !s.Contains('*', StringComparison.Ordinal)))
            {
                foreach (var subject in subjects.Distinct(StringComparer.Ordinal))
                {
                    Add(bySubject, subject, policy);
                }
            }
            else if (matcher.Attributes is { Count: > 0 } attributes)
            {
                // The first name in ordinal order, so the grouping does not depend on the file's key order.
                var (name, value) = attributes.MinBy(a => a.Key, StringComparer.Ordinal);
                if (!byAttribute.TryGetValue(name, out var byValue))
                {
                    byAttribute[name] = byValue = new Dictionary<string, List<CompiledPolicy>>(StringComparer.Ordinal);
                }
                Add(byValue, value, policy);
            }
            else if (matcher.AuthMethods is { } methods)
            {
                foreach (var method in methods.Distinct(StringComparer.Ordinal))
                {
                    Add(byAuthMethod, method, policy);
                }
            }
            else
            {
                everyone.Add(policy);
            }
        }
        _everyone = [.. everyone];
        _bySubject = Freeze(bySubject);
        _byAuthMethod = Freeze(byAuthMethod);
        _byAttribute = [.. byAttribute.Select(a => (a.Key, Freeze(a.Value)))];
    }

    /// <summary>How many policies a check for <paramref name="identity"/> visits (tests and benchmarks).</summary>
    public int CandidateCount(CallerIdentity identity)
    {
        var count = _everyone.Length + Group(_bySubject, identity.Subject).Length + Group(_byAuthMethod, identity.AuthMethod).Length;
        foreach (var (name, byValue) in _byAttribute)
        {
            count += identity.Attributes.TryGetValue(name, out var value) ? Group(byValue, value).Length : 0;
        }
        return count;
    }

    public bool IsAllowed(CallerIdentity identity, Capability capability, string path)
    {
        var check = new Check(identity, capability, path);
        if (check.Visit(_everyone) || check.Visit(Group(_bySubject, identity.Subject)) || check.Visit(Group(_byAuthMethod, identity.AuthMethod)))
        {
            return false;
        }
        foreach (var (name, byValue) in _byAttribute)
        {
            if (identity.Attributes.TryGetValue(name, out var value) && check.Visit(Group(byValue, value)))
            {
                return false;
            }
        }
        return check.Granted;
    }

    private static CompiledPolicy[] Group(Dictionary<string, CompiledPolicy[]> groups, string key) =>
        groups.TryGetValue(key, out var group) ? group : [];

    private static void Add(Dictionary<string, List<CompiledPolicy>> groups, string key, CompiledPolicy policy)
    {
        if (!groups.TryGetValue(key, out var group))
        {
            groups[key] = group = [];
        }
        group.Add(policy);
    }

    private static Dictionary<string, CompiledPolicy[]> Freeze(Dictionary<string, List<CompiledPolicy>> groups) =>
        groups.ToDictionary(g => g.Key, g => g.Value.ToArray(), StringComparer.Ordinal);

    /// <summary>One evaluation: a grant from any applicable rule, unless any applicable deny rule matches (deny by default).
    /// A struct kept in the caller's frame, so a check allocates only the path's split.</summary>
    private struct Check(CallerIdentity identity, Capability capability, string path)
    {
        private string[]? _segments;

        public bool Granted { get; private set; }

        /// <summary>Visits a group of policies; true when a deny rule matched, which decides the answer.</summary>
        public bool Visit(CompiledPolicy[] policies)
        {
            foreach (var policy in policies)
            {
                if (!policy.AppliesTo(identity))
                {
                    continue;
                }
                foreach (var rule in policy.Rules)
                {
                    if ((rule.Capabilities & capability) == 0 || (Granted && !rule.Deny) || !rule.Matches(_segments ??= path.Split('/'), identity))
                    {
                        continue;
                    }
                    if (rule.Deny)
                    {
                        return true;
                    }
                    Granted = true;
                }
            }
            return false;
        }
    }
}
