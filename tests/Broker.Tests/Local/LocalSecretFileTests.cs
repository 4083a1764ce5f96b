using SecretsBroker.Broker.Backends.Local;

namespace SecretsBroker.Broker.Tests.Local;

public sealed class LocalSecretFileTests
{
    private static readonly DateTimeOffset FileTime = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Json_and_yaml_files_of_the_same_shape_parse_to_the_same_secrets()
    {
        const string json = """
            { "secrets": {
                "db/main": { "data": { "username": "FAKE-user", "password": "FAKE-pass" } },
                "api/key": { "versions": [ { "data": { "key": "FAKE-v1" }, "created": "2026-01-01T00:00:00Z" }, { "data": { "key": "FAKE-v2" } } ] },
                "ca": { "binary": "RkFLRQ==" } } }
            """;
        const string yaml = """
            secrets:
              db/main:
                data: { username: FAKE-user, password: FAKE-pass }
              api/key:
                versions:
                  - data: { key: FAKE-v1 }
                    created: 2026-01-01T00:00:00Z
                  - data: { key: FAKE-v2 }
              ca:
                binary: RkFLRQ==
            """;
        foreach (var snapshot in new[] { LocalSecretFile.Parse(json, isYaml: false, FileTime), LocalSecretFile.Parse(yaml, isYaml: true, FileTime) })
        {
            Assert.Equal(["api/key", "ca", "db/main"], snapshot.SortedNames);
            Assert.Equal("FAKE-pass", snapshot.Secrets["db/main"][0].Data!["password"]);
            var versions = snapshot.Secrets["api/key"];
            Assert.Equal(["1", "2"], versions.Select(v => v.Version));
            Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), versions[0].CreatedAt);
            Assert.Equal(FileTime, versions[1].CreatedAt);
            Assert.Equal("FAKE"u8.ToArray(), snapshot.Secrets["ca"][0].Binary);
        }
    }

    [Theory]
    [InlineData("""{}""", "no top-level 'secrets' map")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": "FAKE-value" } } }, "unknown": "FAKE-value" }""", "not valid JSON of the expected shape")]
    [InlineData("""{ "secrets": { "a//b": { "data": { "k": "FAKE-value" } } } }""", "entry 1 under 'secrets': name has an empty segment")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": "FAKE-value" }, "binary": "RkFLRQ==" } } }""", "give exactly one of 'data'")]
    [InlineData("""{ "secrets": { "a": { "binary": "FAKE-value!!" } } }""", "'binary' is not valid base64")]
    [InlineData("""{ "secrets": { "a": { "versions": [] } } }""", "empty 'versions' list")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": "FAKE-value" }, "versions": [ { "data": { "k": "FAKE-value" } } ] } } }""", "both 'versions' and a value")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": "FAKE-value" }, "created": "yesterday" } } }""", "'created' is not an ISO 8601 time")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": FAKE-value } } } }""", "not valid JSON of the expected shape (line 1")]
    [InlineData("""{ "secrets": { "a": { "data": { "k": { "nested": "FAKE-value" } } } } }""", "not valid JSON of the expected shape")]
    public void A_broken_json_file_is_rejected_with_a_reason_that_never_quotes_a_value(string content, string expected)
    {
        var error = Assert.Throws<FormatException>(() => LocalSecretFile.Parse(content, isYaml: false, FileTime));
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("FAKE-value", error.Message);
    }

    [Fact]
    public void A_broken_yaml_file_is_rejected_with_its_position_and_no_value()
    {
        var error = Assert.Throws<FormatException>(() => LocalSecretFile.Parse("secrets:\n  a:\n    data: [FAKE-value", isYaml: true, FileTime));
        Assert.Contains("not valid YAML", error.Message);
        Assert.DoesNotContain("FAKE-value", error.Message);
    }
}
