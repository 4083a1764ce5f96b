namespace SecretsBroker.VaultEmulator;

/// <summary>One path rule of an ACL policy, as in Vault's HCL: <c>path "secret/data/*" { capabilities = ["read"] }</c>.</summary>
public sealed record PolicyRule(string Path, IReadOnlySet<string> Capabilities);

/// <summary>
/// Vault's ACL evaluation, reduced to what the emulator needs: exact rules beat glob rules, a longer
/// glob beats a shorter one, '+' matches one segment, a trailing '*' matches any suffix, "deny" wins.
/// </summary>
public static class Acl
{
    /// <summary>The rules Vault's built-in "default" policy grants for the endpoints the emulator serves.</summary>
    public static readonly PolicyRule[] DefaultPolicy =
    [
        new("auth/token/lookup-self", new HashSet<string> { "read" }),
        new("auth/token/renew-self", new HashSet<string> { "update" }),
        new("auth/token/revoke-self", new HashSet<string> { "update" }),
        new("sys/leases/renew", new HashSet<string> { "update" }),
        new("sys/leases/lookup", new HashSet<string> { "update" }),
        new("sys/renew", new HashSet<string> { "update" }),
    ];

    public static bool Allows(IEnumerable<PolicyRule> rules, string path, string capability)
    {
        PolicyRule[] all = [.. rules];
        var exact = all.Where(r => !IsGlob(r.Path) && r.Path == path).ToArray();
        var chosen = exact;
        if (chosen.Length == 0)
        {
            var globs = all.Where(r => IsGlob(r.Path) && Matches(r.Path, path)).ToArray();
            if (globs.Length == 0)
            {
                return false;
            }
            var best = globs.Max(r => Priority(r.Path));
            chosen = [.. globs.Where(r => Priority(r.Path) == best)];
        }
        var capabilities = chosen.SelectMany(r => r.Capabilities).ToHashSet(StringComparer.Ordinal);
        if (capabilities.Contains("deny"))
        {
            return false;
        }
        if (capabilities.Contains(capability))
        {
            return true;
        }
        // Vault checks create-or-update writes against whichever applies; the emulator accepts either.
        return capability is "create" or "update" && (capabilities.Contains("create") || capabilities.Contains("update"));
    }

    private static bool IsGlob(string pattern) => pattern.EndsWith('*') || pattern.Contains('+');

    private static int Priority(string pattern) => pattern.Length * 2 - pattern.Count(c => c == '+');

    private static bool Matches(string pattern, string path)
    {
        var prefixMatch = pattern.EndsWith('*');
        var body = prefixMatch ? pattern[..^1] : pattern;
        var patternSegments = body.Split('/');
        var pathSegments = path.Split('/');
        if (!prefixMatch && patternSegments.Length != pathSegments.Length)
        {
            return false;
        }
        if (patternSegments.Length > pathSegments.Length)
        {
            return false;
        }
        for (var i = 0; i < patternSegments.Length; i++)
        {
            var last = i == patternSegments.Length - 1;
            var p = patternSegments[i];
            var s = pathSegments[i];
            if (p == "+")
            {
                continue;
            }
            if (last && prefixMatch)
            {
                return s.StartsWith(p, StringComparison.Ordinal);
            }
            if (p != s)
            {
                return false;
            }
        }
        return true;
    }
}
