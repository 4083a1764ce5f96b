using System.Security.Cryptography;
using System.Text;

namespace SecretsBroker.Audit.Contracts;

/// <summary>
/// The one reading of <c>authorization: Bearer &lt;token&gt;</c> and the one check of a presented token against configured
/// SHA-256 hashes, shared by the broker (dev tokens, token HMACs in audit events) and the audit service (operator tokens).
/// </summary>
public static class BearerTokens
{
    private const string Scheme = "Bearer ";

    /// <summary>Whether the header has the Bearer form; <paramref name="token"/> is the trimmed token (possibly empty).</summary>
    public static bool TryParse(string? authorizationHeader, out ReadOnlySpan<char> token)
    {
        if (authorizationHeader is null || !authorizationHeader.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            token = [];
            return false;
        }
        token = authorizationHeader.AsSpan(Scheme.Length).Trim();
        return true;
    }

    /// <summary>The token of a Bearer header, or empty.</summary>
    public static ReadOnlySpan<char> Parse(string? authorizationHeader) => TryParse(authorizationHeader, out var token) ? token : [];

    /// <summary>
    /// The index in <paramref name="sha256Hashes"/> of the hash of <paramref name="token"/>'s UTF-8 bytes, or -1. Every hash is
    /// compared in constant time, so the time taken does not reveal which one matched.
    /// </summary>
    public static int Match(ReadOnlySpan<char> token, IReadOnlyList<byte[]> sha256Hashes) => Match(token, sha256Hashes, static hash => hash);

    /// <summary>Like <see cref="Match(ReadOnlySpan{char}, IReadOnlyList{byte[]})"/> over items that carry their hash.</summary>
    public static int Match<T>(ReadOnlySpan<char> token, IReadOnlyList<T> items, Func<T, byte[]> sha256Of)
    {
        Span<byte> presented = stackalloc byte[SHA256.HashSizeInBytes];
        var utf8 = token.Length <= 256 ? stackalloc byte[256 * 3] : new byte[Encoding.UTF8.GetMaxByteCount(token.Length)];
        SHA256.HashData(utf8[..Encoding.UTF8.GetBytes(token, utf8)], presented);
        var match = -1;
        for (var i = 0; i < items.Count; i++)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, sha256Of(items[i])))
            {
                match = i;
            }
        }
        return match;
    }
}
