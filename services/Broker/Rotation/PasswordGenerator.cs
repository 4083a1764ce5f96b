using System.Security.Cryptography;

namespace SecretsBroker.Broker.Rotation;

/// <summary>Generates values from a validated <see cref="GeneratorPolicy"/> with <see cref="RandomNumberGenerator"/> (uniform, no modulo bias).</summary>
public sealed class PasswordGenerator
{
    private readonly int _length;
    private readonly char[] _alphabet;
    private readonly char[][] _required;

    private PasswordGenerator(int length, char[] alphabet, char[][] required)
    {
        _length = length;
        _alphabet = alphabet;
        _required = required;
    }

    /// <summary>Builds a generator; returns the problems instead when the policy cannot produce a value.</summary>
    public static PasswordGenerator Create(GeneratorPolicy policy, out IReadOnlyList<string> problems)
    {
        var errors = new List<string>();
        var excluded = new HashSet<char>(policy.Exclude);
        var alphabet = (policy.Alphabet ?? GeneratorPolicy.Lower + GeneratorPolicy.Upper + GeneratorPolicy.Digits)
            .Where(c => !excluded.Contains(c) && !char.IsControl(c)).Distinct().ToArray();
        if (alphabet.Length < 10)
        {
            errors.Add($"Generator: the alphabet has {alphabet.Length} usable characters after exclusions; at least 10 are needed");
        }
        var required = new List<char[]>();
        foreach (var name in policy.Require)
        {
            var source = name.ToLowerInvariant() switch
            {
                "lower" => GeneratorPolicy.Lower,
                "upper" => GeneratorPolicy.Upper,
                "digit" => GeneratorPolicy.Digits,
                "symbol" => GeneratorPolicy.Symbols,
                _ => null,
            };
            if (source is null)
            {
                errors.Add($"Generator: Require '{name}' is not a class; use lower, upper, digit or symbol");
                continue;
            }
            var usable = source.Where(c => alphabet.Contains(c)).ToArray();
            if (usable.Length == 0)
            {
                errors.Add($"Generator: Require '{name}' has no character left in the alphabet after exclusions");
                continue;
            }
            required.Add(usable);
        }
        if (policy.Length < 16 || policy.Length > 256)
        {
            errors.Add($"Generator: Length {policy.Length} is out of range; use 16 to 256");
        }
        else if (required.Count > policy.Length)
        {
            errors.Add("Generator: more required classes than characters");
        }
        problems = errors;
        return new PasswordGenerator(policy.Length, alphabet, [.. required]);
    }

    public string Next()
    {
        var chars = new char[_length];
        // One of each required class, the rest from the whole alphabet, then a uniform shuffle so the positions reveal nothing.
        for (var i = 0; i < _required.Length; i++)
        {
            chars[i] = _required[i][RandomNumberGenerator.GetInt32(_required[i].Length)];
        }
        for (var i = _required.Length; i < _length; i++)
        {
            chars[i] = _alphabet[RandomNumberGenerator.GetInt32(_alphabet.Length)];
        }
        RandomNumberGenerator.Shuffle(chars.AsSpan());
        return new string(chars);
    }
}
