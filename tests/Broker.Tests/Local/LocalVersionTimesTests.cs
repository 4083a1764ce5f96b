using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using SecretsBroker.Broker.Backends.Local;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Local;

/// <summary>
/// A local mount's versions have times of their own: an edit of the file changes the times of what it changed only
/// (it used to give every version without 'created' the file's new modification time).
/// </summary>
[Trait("Category", "Integration")]
public sealed class LocalVersionTimesTests
{
    private static readonly DateTimeOffset FirstWrite = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private const string Before = """
        secrets:
          untouched:
            data: { password: FAKE-untouched }
          edited:
            data: { password: FAKE-before }
          appended:
            versions:
              - data: { token: FAKE-v1 }
          binary:
            binary: RkFLRQ==
        """;

    private const string After = """
        secrets:
          untouched:
            data: { password: FAKE-untouched }
          edited:
            data: { password: FAKE-after }
          appended:
            versions:
              - data: { token: FAKE-v1 }
              - data: { token: FAKE-v2 }
          binary:
            binary: RkFLRQ==
        """;

    [Fact]
    public async Task Editing_one_secret_changes_only_that_secrets_times()
    {
        using var directory = new TestDirectory();
        var path = directory.WriteFile("secrets.yaml", Before);
        File.SetLastWriteTimeUtc(path, FirstWrite.UtcDateTime);
        var backend = (LocalFileBackend)new LocalBackendFactory(new HostingEnvironment { ContentRootPath = directory.Path }, NullLoggerFactory.Instance)
            .Create(new MountDefinition("team", "local"), Settings("secrets.yaml"));
        using var _ = backend;
        Assert.Equal(FirstWrite, (await LatestAsync(backend, "edited")).CreatedAt);
        var reloaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.Changed += () => reloaded.TrySetResult();

        directory.WriteFile("secrets.yaml", After);
        await reloaded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var editTime = new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero);

        Assert.Equal(FirstWrite, (await LatestAsync(backend, "untouched")).CreatedAt);
        Assert.Equal(FirstWrite, (await LatestAsync(backend, "binary")).CreatedAt);
        var edited = await LatestAsync(backend, "edited");
        Assert.Equal("FAKE-after", edited.Data!["password"]);
        Assert.Equal(editTime, edited.CreatedAt);
        Assert.Equal(FirstWrite, (await backend.GetAsync("appended", new VersionSelector("1", null), CancellationToken.None)).CreatedAt);
        var appended = await LatestAsync(backend, "appended");
        Assert.Equal("2", appended.Version);
        Assert.Equal(editTime, appended.CreatedAt);
        Assert.True(editTime > FirstWrite);
    }

    [Fact]
    public void Parsing_against_the_previous_snapshot_keeps_the_times_of_unchanged_versions_and_explicit_times_win()
    {
        var first = LocalSecretFile.Parse(Before, isYaml: true, FirstWrite);
        var later = FirstWrite.AddDays(3);

        var second = LocalSecretFile.Parse(After.Replace("FAKE-v2 }", "FAKE-v2 }\n        created: 2026-02-02T00:00:00Z", StringComparison.Ordinal),
            isYaml: true, later, first);

        Assert.Equal(FirstWrite, second.Secrets["untouched"][0].CreatedAt);
        Assert.Equal(FirstWrite, second.Secrets["binary"][0].CreatedAt);
        Assert.Equal(later, second.Secrets["edited"][0].CreatedAt);
        Assert.Equal(FirstWrite, second.Secrets["appended"][0].CreatedAt);
        Assert.Equal(new DateTimeOffset(2026, 2, 2, 0, 0, 0, TimeSpan.Zero), second.Secrets["appended"][1].CreatedAt);
    }

    private static Task<SecretValue> LatestAsync(LocalFileBackend backend, string name) =>
        backend.GetAsync(name, new VersionSelector(null, null), CancellationToken.None);

    private static IConfigurationSection Settings(string file) =>
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Mount:File"] = file }).Build().GetSection("Mount");
}
