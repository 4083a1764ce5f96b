using System.Buffers;

namespace SecretsBroker.Broker.Core;

/// <summary>
/// The one place that decides whether a logical path (or a secret name inside a mount) is well formed.
/// Rules: 1 to 512 characters; segments separated by '/', each 1 to 128 characters of ASCII letters,
/// digits and <c>. _ - + = @ ,</c>; no leading or trailing '/', no empty segment, no '.' or '..'.
/// Error messages name the rule and the position, never echo the path.
/// </summary>
public static class LogicalPath
{
    public const int MaxLength = 512;
    public const int MaxSegmentLength = 128;
    public const string AllowedCharactersDescription = "ASCII letters, digits and . _ - + = @ ,";

    private static readonly SearchValues<char> AllowedCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=@,/");

    /// <summary>Returns why <paramref name="path"/> is malformed, or null when it is valid.</summary>
    public static string? Validate(string? path, string field = "path")
    {
        if (string.IsNullOrEmpty(path))
        {
            return $"{field} must not be empty";
        }
        if (path.Length > MaxLength)
        {
            return $"{field} is {path.Length} characters long; the limit is {MaxLength}";
        }
        var bad = path.AsSpan().IndexOfAnyExcept(AllowedCharacters);
        if (bad >= 0)
        {
            return $"{field} has the character {Describe(path[bad])} at position {bad + 1}; allowed are {AllowedCharactersDescription} and '/' between segments";
        }
        if (path[0] == '/')
        {
            return $"{field} must not start with '/'";
        }
        if (path[^1] == '/')
        {
            return $"{field} must not end with '/'";
        }

        var segmentNumber = 0;
        foreach (var range in path.AsSpan().Split('/'))
        {
            segmentNumber++;
            var segment = path.AsSpan(range);
            if (segment.IsEmpty)
            {
                return $"{field} has an empty segment (\"//\") at segment {segmentNumber}";
            }
            if (segment.Length > MaxSegmentLength)
            {
                return $"{field} segment {segmentNumber} is {segment.Length} characters long; the limit is {MaxSegmentLength}";
            }
            if (segment is "." or "..")
            {
                return $"{field} segment {segmentNumber} is '{segment}'; relative segments are not allowed";
            }
        }
        return null;
    }

    /// <summary>Throws INVALID_ARGUMENT when <paramref name="path"/> is malformed.</summary>
    public static void EnsureValid(string? path, string field = "path")
    {
        if (Validate(path, field) is { } error)
        {
            BrokerException.ThrowInvalidArgument(error);
        }
    }

    private static string Describe(char c) =>
        c >= ' ' && c < 0x7f ? $"'{c}' (U+{(int)c:X4})" : $"U+{(int)c:X4}";
}
