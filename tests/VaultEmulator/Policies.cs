namespace SecretsBroker.VaultEmulator;

/// <summary>One path rule of an ACL policy, as in Vault's HCL: <c>path "secret/data/*" { capabilities = ["read"] }</c>.</summary>
public sealed record PolicyRule(string Path, IReadOnlySet<string> Capabilities);

/// <summary>
/// Vault's ACL evaluation (vault/acl.go, ACL.AllowOperation), reduced to what the emulator needs: an exact
/// rule wins; for LIST the exact rule without the trailing slash also counts (Vault adds the slash to a
/// list request's path, then looks the rule up with and without it); otherwise a longer glob beats a
/// shorter one, '+' matches one segment, a trailing '*' matches any suffix, "deny" wins. Capabilities are
/// checked as asked: create and update are separate (vault/request_handling.go, checkToken, turns a write
/// into a create or an update from the backend's existence check).
/// </summary>
public static class Acl
{
    /// <summary>The rules Vault's built-in "default" policy grants for the endpoints the emulator serves (vault/policy_store.go, defaultPolicy).</summary>
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
        if (exact.Length == 0 && capability == "list" && path.EndsWith('/'))
        {
            exact = [.. all.Where(r => !IsGlob(r.Path) && r.Path == path[..^1])];
        }
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
        return !capabilities.Contains("deny") && capabilities.Contains(capability);
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
