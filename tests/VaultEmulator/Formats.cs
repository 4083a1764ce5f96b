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

    /// <summary>
    /// An int as mapstructure.WeakDecode makes one (github.com/mitchellh/mapstructure, decodeInt): numbers (floats
    /// truncated), booleans as 1/0, strings through strconv.ParseInt(s, 0, 64) with "" as 0, JSON null as 0.
    /// Null when the value does not decode.
    /// </summary>
    public static long? WeakInt(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return 0;
            case JsonValue value when value.TryGetValue<long>(out var whole):
                return whole;
            case JsonValue value when value.TryGetValue<double>(out var fraction):
                return (long)fraction;
            case JsonValue value when value.TryGetValue<bool>(out var flag):
                return flag ? 1 : 0;
            case JsonValue value when value.TryGetValue<string>(out var text):
                return text.Length == 0 ? 0 : ParseGoInt(text);
            default:
                return null;
        }
    }

    /// <summary>A bool as mapstructure.WeakDecode makes one: numbers are non-zero, strings go through strconv.ParseBool ("" is false).</summary>
    public static bool? WeakBool(JsonNode? node) => node switch
    {
        null => false,
        JsonValue value when value.TryGetValue<bool>(out var flag) => flag,
        JsonValue value when value.TryGetValue<double>(out var number) => number != 0,
        JsonValue value when value.TryGetValue<string>(out var text) => text switch
        {
            "" => false,
            "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
            "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
            _ => null,
        },
        _ => null,
    };

    /// <summary>strconv.ParseInt with base 0: an optional sign, then 0x/0o/0b prefixes or decimal.</summary>
    private static long? ParseGoInt(string text)
    {
        var negative = text.StartsWith('-');
        var digits = text.TrimStart('+', '-');
        var (radix, body) = digits.Length > 2 && digits[0] == '0' ? char.ToLowerInvariant(digits[1]) switch
        {
            'x' => (16, digits[2..]),
            'o' => (8, digits[2..]),
            'b' => (2, digits[2..]),
            _ => (10, digits),
        } : (10, digits);
        try
        {
            var value = radix == 10
                ? long.Parse(body, NumberStyles.None, CultureInfo.InvariantCulture)
                : Convert.ToInt64(body, radix);
            return negative ? -value : value;
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            return null;
        }
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
