using SecretsBroker.Broker.Rotation;

namespace SecretsBroker.Broker.Tests.Unit.Rotation;

public sealed class PasswordGeneratorTests
{
    [Fact]
    public void Values_have_the_length_every_required_class_and_no_excluded_character()
    {
        var policy = new GeneratorPolicy
        {
            Length = 20,
            Alphabet = GeneratorPolicy.Lower + GeneratorPolicy.Upper + GeneratorPolicy.Digits + GeneratorPolicy.Symbols,
            Require = ["lower", "upper", "digit", "symbol"],
            Exclude = "0Ol1I|'\"\\",
        };
        var generator = PasswordGenerator.Create(policy, out var problems);
        Assert.Empty(problems);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 2000; i++)
        {
            var value = generator.Next();
            Assert.Equal(20, value.Length);
            Assert.Contains(value, char.IsLower);
            Assert.Contains(value, char.IsUpper);
            Assert.Contains(value, char.IsDigit);
            Assert.Contains(value, c => GeneratorPolicy.Symbols.Contains(c, StringComparison.Ordinal));
            Assert.DoesNotContain(value, c => policy.Exclude.Contains(c, StringComparison.Ordinal));
            Assert.True(seen.Add(value));
        }
    }

    [Fact]
    public void Every_alphabet_character_is_drawn_about_equally_often()
    {
        var generator = PasswordGenerator.Create(new GeneratorPolicy { Length = 64, Alphabet = "abcdefghij" }, out _);
        var counts = new int[10];
        for (var i = 0; i < 1000; i++)
        {
            foreach (var c in generator.Next())
            {
                counts[c - 'a']++;
            }
        }
        // 64 000 draws, 6 400 expected per character; a biased generator (modulo, first-class placement) leaves this band.
        Assert.All(counts, n => Assert.InRange(n, 6000, 6800));
    }

    [Fact]
    public void A_policy_that_cannot_produce_a_value_is_refused()
    {
        PasswordGenerator.Create(new GeneratorPolicy { Alphabet = "abc" }, out var small);
        Assert.Contains(small, p => p.Contains("usable characters", StringComparison.Ordinal));
        PasswordGenerator.Create(new GeneratorPolicy { Require = ["symbol"] }, out var missing);
        Assert.Contains(missing, p => p.Contains("Require 'symbol' has no character left", StringComparison.Ordinal));
    }
}
