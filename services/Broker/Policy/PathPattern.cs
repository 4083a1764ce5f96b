using System.Buffers;
using System.Text.RegularExpressions;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Policy;

/// <summary>
/// A logical-path pattern of a policy rule. Segments are separated by '/'; a segment is <c>**</c>
/// (any number of segments, including none) or a mix of literal text, <c>*</c> (any characters within
/// one segment) and identity templates such as <c>{{identity.namespace}}</c>.
/// A template's value is matched as literal text, and only when it is a well-formed single segment:
/// an attribute of <c>*</c>, <c>a/b</c>, <c>..</c> or an empty one makes the rule match nothing, so no
/// attribute can widen a pattern.
/// </summary>
public sealed partial class PathPattern
{
    private static readonly SearchValues<char> SegmentCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=@,");

    private readonly Segment[] _segments;

    private PathPattern(string text, Segment[] segments)
    {
        Text = text;
        _segments = segments;
    }

    public string Text { get; }

    /// <summary>Parses a pattern; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static PathPattern Parse(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            throw new FormatException("a path pattern must not be empty");
        }
        var segments = new List<Segment>();
        foreach (var raw in text.Split('/'))
        {
            if (raw == "**")
            {
                segments.Add(Segment.AnySegments);
                continue;
            }
            if (raw.Length == 0)
            {
                throw new FormatException("a path pattern has an empty segment");
            }
            if (raw is "." or "..")
            {
                throw new FormatException("a path pattern must not contain '.' or '..' segments");
            }
            segments.Add(new Segment(ParseParts(raw)));
        }
        return new PathPattern(text, [.. segments]);
    }

    /// <summary>True when <paramref name="path"/> (a validated logical path) matches this pattern for <paramref name="identity"/>.</summary>
    public bool Matches(string path, CallerIdentity identity) => Matches(path.Split('/'), identity);

    /// <summary>The same, for a path already split into its segments (a policy check splits once for all its patterns).</summary>
    public bool Matches(string[] pathSegments, CallerIdentity identity) => MatchFrom(0, pathSegments, 0, identity);

    private bool MatchFrom(int patternIndex, string[] path, int pathIndex, CallerIdentity identity)
    {
        while (patternIndex < _segments.Length)
        {
            var segment = _segments[patternIndex];
            if (segment.IsAnySegments)
            {
                // '**' at the end matches the rest; elsewhere try every split point.
                if (patternIndex == _segments.Length - 1)
                {
                    return true;
                }
                for (var skip = pathIndex; skip <= path.Length; skip++)
                {
                    if (MatchFrom(patternIndex + 1, path, skip, identity))
                    {
                        return true;
                    }
                }
                return false;
            }
            if (pathIndex >= path.Length || !segment.Matches(path[pathIndex], identity))
            {
                return false;
            }
            patternIndex++;
            pathIndex++;
        }
        return pathIndex == path.Length;
    }

    private static Part[] ParseParts(string raw)
    {
        var parts = new List<Part>();
        var position = 0;
        while (position < raw.Length)
        {
            if (raw[position] == '*')
            {
                if (parts.Count == 0 || parts[^1].Kind != PartKind.Star)
                {
                    parts.Add(new Part(PartKind.Star, ""));
                }
                position++;
                continue;
            }
            if (raw.AsSpan(position).StartsWith("{{"))
            {
                var end = raw.IndexOf("}}", position, StringComparison.Ordinal);
                if (end < 0)
                {
                    throw new FormatException("a path pattern has '{{' without a closing '}}'");
                }
                var expression = raw[(position + 2)..end].Trim();
                var match = TemplateExpression().Match(expression);
                if (!match.Success)
                {
                    throw new FormatException($"'{{{{{expression}}}}}' is not a template; use {{{{identity.subject}}}}, {{{{identity.auth_method}}}} or {{{{identity.<attribute>}}}}");
                }
                parts.Add(new Part(PartKind.Template, match.Groups[1].Value));
                position = end + 2;
                continue;
            }
            var next = raw.AsSpan(position).IndexOfAny('*', '{');
            var literal = next < 0 ? raw[position..] : raw.Substring(position, next == 0 ? 1 : next);
            if (literal.AsSpan().ContainsAnyExcept(SegmentCharacters))
            {
                throw new FormatException($"a path pattern has a character outside the path alphabet (ASCII letters, digits and . _ - + = @ ,)");
            }
            parts.Add(new Part(PartKind.Literal, literal));
            position += literal.Length;
        }
        return [.. parts];
    }

    /// <summary>The value an identity gives a template, or null when it is missing or not a well-formed single segment.</summary>
    private static string? TemplateValue(string name, CallerIdentity identity)
    {
        var value = name switch
        {
            "subject" => identity.Subject,
            "auth_method" => identity.AuthMethod,
            _ => identity.Attributes.GetValueOrDefault(name),
        };
        return value is { Length: > 0 and <= 128 } && value is not ("." or "..") && !value.AsSpan().ContainsAnyExcept(SegmentCharacters)
            ? value
            : null;
    }

    [GeneratedRegex(@"^identity\.([a-z][a-z0-9_]*)$")]
    private static partial Regex TemplateExpression();

    private enum PartKind
    {
        Literal,
        Star,
        Template,
    }

    private readonly record struct Part(PartKind Kind, string Text);

    private sealed class Segment(Part[] parts)
    {
        public static readonly Segment AnySegments = new([]) { IsAnySegments = true };

        public bool IsAnySegments { get; private init; }

        public bool Matches(string text, CallerIdentity identity) => MatchParts(0, text, 0, identity);

        private bool MatchParts(int partIndex, string text, int position, CallerIdentity identity)
        {
            if (partIndex == parts.Length)
            {
                return position == text.Length;
            }
            var part = parts[partIndex];
            switch (part.Kind)
            {
                case PartKind.Star:
                    for (var end = position; end <= text.Length; end++)
                    {
                        if (MatchParts(partIndex + 1, text, end, identity))
                        {
                            return true;
                        }
                    }
                    return false;
                default:
                    var literal = part.Kind == PartKind.Literal ? part.Text : TemplateValue(part.Text, identity);
                    return literal is not null
                        && text.AsSpan(position).StartsWith(literal, StringComparison.Ordinal)
                        && MatchParts(partIndex + 1, text, position + literal.Length, identity);
            }
        }
    }
}
