using Grpc.Core;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Paths;

public sealed class LogicalPathTests
{
    [Theory]
    [InlineData("kv/teams/alpha/db")]
    [InlineData("a")]
    [InlineData("aws/prod/ml-training/postgres-credentials")]
    [InlineData("x/Name_With.Dots-and+plus=eq@at,comma")]
    [InlineData("segment.with..dots/inside")]
    public void Well_formed_paths_are_accepted(string path) => Assert.Null(LogicalPath.Validate(path));

    [Theory]
    [InlineData(null, "must not be empty")]
    [InlineData("", "must not be empty")]
    [InlineData("/kv/a", "must not start with '/'")]
    [InlineData("kv/a/", "must not end with '/'")]
    [InlineData("kv//a", "empty segment")]
    [InlineData("kv/../a", "segment 2 is '..'")]
    [InlineData("kv/./a", "segment 2 is '.'")]
    [InlineData("..", "segment 1 is '..'")]
    [InlineData("kv/a b", "' ' (U+0020) at position 5")]
    [InlineData("kv/a%2e", "'%' (U+0025) at position 5")]
    [InlineData("kv/\u00e9t\u00e9", "U+00E9 at position 4")]
    [InlineData("kv/a\nb", "U+000A at position 5")]
    [InlineData("kv\\a", "'\\' (U+005C) at position 3")]
    [InlineData("kv/a*", "'*' (U+002A)")]
    public void Each_rule_is_named_in_the_error(string? path, string expected)
    {
        var error = LogicalPath.Validate(path);
        Assert.NotNull(error);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void A_path_over_the_length_limit_is_rejected_with_both_lengths()
    {
        var path = string.Join('/', Enumerable.Repeat(new string('a', 100), 6));
        Assert.Equal($"path is {path.Length} characters long; the limit is 512", LogicalPath.Validate(path));
    }

    [Fact]
    public void A_segment_over_the_segment_limit_is_rejected()
    {
        Assert.Equal("path segment 2 is 129 characters long; the limit is 128", LogicalPath.Validate("kv/" + new string('s', 129)));
        Assert.Null(LogicalPath.Validate("kv/" + new string('s', 128)));
    }

    [Fact]
    public void Errors_never_echo_the_path()
    {
        const string path = "kv/FAKE-secret-looking-name//x";
        Assert.DoesNotContain("FAKE-secret-looking-name", LogicalPath.Validate(path));
    }

    [Fact]
    public void EnsureValid_throws_invalid_argument_naming_the_field()
    {
        var error = Assert.Throws<BrokerException>(() => LogicalPath.EnsureValid("a//b", "prefix"));
        Assert.Equal(BrokerErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith("prefix has an empty segment", error.Message);
    }
}
