using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>Vault's wire conventions: RFC 3339 nano timestamps, ids, duration strings.</summary>
public static class Formats
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    public static string Time(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    public static string RandomId(int length) => RandomNumberGenerator.GetString(Alphabet, length);

    public static string Uuid() => Guid.NewGuid().ToString("D");

    /// <summary>Parses a Vault duration: a number of seconds or a Go duration such as "90s", "5m", "1h30m".</summary>
    public static long? ParseDuration(JsonNode? node)
    {
        if (node is null)
        {
            return null;
        }
        if (node is JsonValue value && value.TryGetValue<long>(out var seconds))
        {
            return seconds;
        }
        if (node is JsonValue dv && dv.TryGetValue<double>(out var fractional))
        {
            return (long)fractional;
        }
        return ParseDuration(node.GetValue<string>());
    }

    public static long? ParseDuration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var plain))
        {
            return plain;
        }
        double total = 0;
        var number = "";
        foreach (var c in text)
        {
            if (char.IsAsciiDigit(c) || c == '.')
            {
                number += c;
                continue;
            }
            if (number.Length == 0)
            {
                throw new VaultErrorException(VaultResult.BadRequest($"invalid duration \"{text}\""));
            }
            var amount = double.Parse(number, CultureInfo.InvariantCulture);
            total += c switch
            {
                's' => amount,
                'm' => amount * 60,
                'h' => amount * 3600,
                'd' => amount * 86400,
                _ => throw new VaultErrorException(VaultResult.BadRequest($"invalid duration \"{text}\"")),
            };
            number = "";
        }
        if (number.Length > 0)
        {
            throw new VaultErrorException(VaultResult.BadRequest($"invalid duration \"{text}\""));
        }
        return (long)total;
    }

    public static JsonArray Strings(IEnumerable<string> values)
    {
        var array = new JsonArray();
        foreach (var value in values)
        {
            array.Add(value);
        }
        return array;
    }

    public static string[] ReadStrings(JsonNode? node) => node switch
    {
        null => [],
        JsonArray array => [.. array.Select(n => n!.GetValue<string>())],
        JsonValue v => [.. v.GetValue<string>().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
        _ => [],
    };
}
