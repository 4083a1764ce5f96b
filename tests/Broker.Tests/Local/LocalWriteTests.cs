using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Local;

/// <summary>
/// A writable local mount appends versions to its file atomically (temporary file and rename), in the file's own
/// format, with explicit creation times; a read-only one refuses. The real file, its watcher and reloads take part.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LocalWriteTests : IDisposable
{
    private static readonly DateTimeOffset FileTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly TestDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 4, 5, 6, 7, 891, TimeSpan.Zero));

    private const string Yaml = """
        secrets:
          single:
            data: { password: FAKE-single-v1 }
          listed:
            versions:
              - data: { token: FAKE-listed-v1 }
                created: 2025-12-01T00:00:00Z
          blob:
            binary: RkFLRQ==
        """;

    public void Dispose() => _directory.Dispose();

    private LocalFileBackend Open(string file, string content, bool writable = true, bool watch = true)
    {
        var path = _directory.WriteFile(file, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetLastWriteTimeUtc(path, FileTime.UtcDateTime);
        var settings = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mount:File"] = file,
            ["Mount:Writable"] = writable ? "true" : "false",
            ["Mount:Watch"] = watch ? "true" : "false",
        }).Build().GetSection("Mount");
        return (LocalFileBackend)new LocalBackendFactory(new HostingEnvironment { ContentRootPath = _directory.Path }, NullLoggerFactory.Instance, timeProvider: _time)
            .Create(new MountDefinition("dev", "local"), settings);
    }

    private static SecretWrite Fields(string value, string? expected = null) =>
        new() { Data = new Dictionary<string, string> { ["password"] = value }, ExpectedVersion = expected };

    [Fact]
    public async Task A_read_only_mount_refuses_writes_and_leaves_the_file_alone()
    {
        using var backend = Open("secrets.yaml", Yaml, writable: false);

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.WriteVersionAsync("single", Fields("FAKE-x"), CancellationToken.None));

        Assert.Equal(BrokerErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains("Writable: true", error.Message, StringComparison.Ordinal);
        Assert.Equal(Yaml, File.ReadAllText(Path.Combine(_directory.Path, "secrets.yaml")));
    }

    [Theory]
    [InlineData("secrets.yaml")]
    [InlineData("secrets.json")]
    public async Task A_write_appends_a_version_in_the_files_format_and_earlier_versions_keep_their_times(string file)
    {
        var content = file.EndsWith(".json", StringComparison.Ordinal)
            ? """{ "secrets": { "single": { "data": { "password": "FAKE-single-v1" } }, "listed": { "versions": [ { "data": { "token": "FAKE-listed-v1" }, "created": "2025-12-01T00:00:00Z" } ] }, "blob": { "binary": "RkFLRQ==" } } }"""
            : Yaml;
        using var backend = Open(file, content);
        var path = Path.Combine(_directory.Path, file);

        var written = await backend.WriteVersionAsync("single", Fields("FAKE-single-v2", expected: "1"), CancellationToken.None);
        var created = await backend.WriteVersionAsync("fresh/one", new SecretWrite { Binary = [1, 2, 3], ExpectedVersion = "" }, CancellationToken.None);

        Assert.Equal(new WrittenVersion("2", _time.GetUtcNow()), written);
        Assert.Equal("1", created.Version);
        Assert.Equal("FAKE-single-v2", (await backend.GetAsync("single", VersionSelector.Latest, CancellationToken.None)).Data!["password"]);
        var first = await backend.GetAsync("single", new VersionSelector("1"), CancellationToken.None);
        Assert.Equal("FAKE-single-v1", first.Data!["password"]);
        Assert.Equal(FileTime, first.CreatedAt);
        Assert.Equal([1, 2, 3], (await backend.GetAsync("fresh/one", VersionSelector.Latest, CancellationToken.None)).Binary);
        // The file on disk is still a valid file of its format, and a fresh parse (a restart) keeps the new version's time.
        var reparsed = LocalSecretFile.Parse(File.ReadAllText(path), isYaml: file.EndsWith(".yaml", StringComparison.Ordinal), DateTimeOffset.UnixEpoch);
        Assert.Equal(_time.GetUtcNow(), reparsed.Secrets["single"][1].CreatedAt);
        Assert.Equal(new DateTimeOffset(2025, 12, 1, 0, 0, 0, TimeSpan.Zero), reparsed.Secrets["listed"][0].CreatedAt);
        Assert.Equal("RkFLRQ==", Convert.ToBase64String(reparsed.Secrets["blob"][0].Binary!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Single(Directory.GetFiles(_directory.Path));
    }

    [Fact]
    public async Task Check_and_set_names_the_current_version()
    {
        using var backend = Open("secrets.yaml", Yaml);

        var stale = await Assert.ThrowsAsync<BrokerException>(() => backend.WriteVersionAsync("listed", Fields("FAKE-x", expected: "2"), CancellationToken.None));
        var exists = await Assert.ThrowsAsync<BrokerException>(() => backend.WriteVersionAsync("listed", Fields("FAKE-x", expected: ""), CancellationToken.None));
        var missing = await Assert.ThrowsAsync<BrokerException>(() => backend.WriteVersionAsync("absent", Fields("FAKE-x", expected: "1"), CancellationToken.None));

        Assert.Equal("check-and-set failed: the current version is 1", stale.Message);
        Assert.Equal("check-and-set failed: the current version is 1", exists.Message);
        Assert.Equal("check-and-set failed: the secret does not exist, so no version is current", missing.Message);
        Assert.All([stale, exists, missing], e => Assert.Equal(BrokerErrorKind.FailedPrecondition, e.Kind));
        Assert.Equal(Yaml, File.ReadAllText(Path.Combine(_directory.Path, "secrets.yaml")));
    }

    [Fact]
    public async Task Concurrent_writes_with_the_watcher_on_lose_no_version()
    {
        using var backend = Open("secrets.yaml", Yaml, watch: true);

        var writes = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            Task.Run(() => backend.WriteVersionAsync("listed", Fields($"FAKE-c{i}"), CancellationToken.None))));

        Assert.Equal(Enumerable.Range(2, 24).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(),
            writes.Select(w => w.Version).Order());
        // The watcher's own reloads (they may come after the writes) read the whole file, so nothing is lost either way.
        await Eventually.WaitUntilAsync(async () => (await backend.GetCurrentVersionAsync("listed", CancellationToken.None)) == "25");
        var values = new HashSet<string>();
        for (var v = 2; v <= 25; v++)
        {
            values.Add((await backend.GetAsync("listed", new VersionSelector(v.ToString(System.Globalization.CultureInfo.InvariantCulture)), CancellationToken.None)).Data!["password"]);
        }
        Assert.Equal(24, values.Count);
    }

    [Fact]
    public async Task A_file_broken_since_the_last_reload_is_not_overwritten()
    {
        using var backend = Open("secrets.yaml", Yaml, watch: false);
        var path = Path.Combine(_directory.Path, "secrets.yaml");
        File.WriteAllText(path, "secrets: [ not: a map");

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.WriteVersionAsync("single", Fields("FAKE-x"), CancellationToken.None));

        Assert.Equal(BrokerErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal("secrets: [ not: a map", File.ReadAllText(path));
    }
}
