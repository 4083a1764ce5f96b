using System.Text.Json;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>
/// README's quick start as a user runs it: the broker process on its embedded defaults (Development,
/// the repo's services/Broker content root with the demo file), then the brokerctl commands README shows,
/// with the demo token. Every broker listens on port 0 and reports its port.
/// </summary>
[Trait("Category", "Integration")]
public sealed class QuickStartTests
{
    private static readonly string ContentRoot = Path.Combine(RepositoryLayout.Root, "services", "Broker");

    /// <summary>The files of the broker's embedded defaults (Development), for tests that run them from a copy.</summary>
    internal static readonly string[] DevelopmentFiles =
        ["appsettings.json", "appsettings.Development.json", "policies.dev.yaml", "demo-secrets.yaml", "demo-keys.yaml", "demo-rotating.yaml"];

    [Fact]
    public async Task The_broker_on_its_embedded_defaults_serves_the_demo_secret_and_leaves_nothing_for_git_to_show()
    {
        // The repository's own content root and defaults, audit sink included: what it writes must be ignored by git.
        var untrackedBefore = await UntrackedAsync();
        await using var broker = StartBroker("Development", spoolDirectory: null);
        var address = await broker.WaitForListeningAddressAsync();

        var (exitCode, stdout, stderr) = await RunBrokerCtlAsync(address, ["get", "demo/ml/training-db"]);

        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("demo_trainer", json.RootElement.GetProperty("data").GetProperty("username").GetString());
        Assert.False(broker.HasExited);
        Assert.Empty((await UntrackedAsync()).Except(untrackedBefore));
    }

    /// <summary>Files under services/Broker that git would show as new (a developer's own new files are there before the run).</summary>
    private static async Task<string[]> UntrackedAsync()
    {
        var (exitCode, untracked, stderr) = await ExternalProcess.RunAsync("git", ["-C", RepositoryLayout.Root, "ls-files", "--others", "--exclude-standard", "--", "services/Broker"]);
        Assert.True(exitCode == 0, stderr);
        return untracked.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task The_readme_quick_start_is_ready_and_every_command_it_shows_succeeds()
    {
        var quickStart = ReadmeQuickStart.Read();
        // The README's defaults, copied so the demo edit (appending a version) leaves the repository alone.
        using var contentRoot = new TestDirectory();
        foreach (var file in DevelopmentFiles)
        {
            File.Copy(Path.Combine(ContentRoot, file), Path.Combine(contentRoot.Path, file));
        }
        await using var broker = StartBroker("Development", spoolDirectory: null, contentRoot: contentRoot.Path);
        var address = await broker.WaitForListeningAddressAsync();
        var management = await broker.WaitForListeningAddressAsync("Management server listening on");
        Assert.StartsWith("Healthy", await ReadinessAsync(management));
        var trainingDbCreated = await CreatedTimeAsync(address, "demo/ml/training-db");

        foreach (var command in quickStart.Commands.Where(c => c.Arguments[0] != "watch"))
        {
            var (exitCode, _, stderr) = await RunBrokerCtlAsync(address, command.Arguments);
            Assert.True(exitCode == command.ExpectedExit, $"brokerctl {string.Join(' ', command.Arguments)}: exit {exitCode}, expected {command.ExpectedExit}: {stderr}");
        }

        // The watch waits for a new version, which the README publishes by appending to the file. The watch is in place once
        // its stream opened, which the test cannot see: append until it reports one (each append is one more version).
        await using var watch = StartBrokerCtl(address, Assert.Single(quickStart.Commands, c => c.Arguments[0] == "watch").Arguments);
        bool Reported() => watch.HasExited || watch.Output.Count > 0;
        await Eventually.WaitUntilAsync(async () =>
        {
            File.AppendAllText(Path.Combine(contentRoot.Path, "demo-secrets.yaml"), quickStart.Appended);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!Reported() && waited.Elapsed < TimeSpan.FromSeconds(2))
            {
                await Task.Delay(25);
            }
            return Reported();
        }, TimeSpan.FromSeconds(60), "the watch reports the appended version");
        Assert.Equal(0, await watch.WaitForExitAsync());
        using (var secretEvent = JsonDocument.Parse(Assert.Single(watch.Output)))
        {
            Assert.Equal("demo/ml/model-registry", secretEvent.RootElement.GetProperty("path").GetString());
            Assert.True(int.Parse(secretEvent.RootElement.GetProperty("version").GetString()!, System.Globalization.CultureInfo.InvariantCulture) >= 3);
        }
        // Editing one secret leaves the others' times alone.
        Assert.Equal(trainingDbCreated, await CreatedTimeAsync(address, "demo/ml/training-db"));

        // Still ready, nothing piling up in the spool, and the decisions read back from the local audit file.
        Assert.StartsWith("Healthy", await ReadinessAsync(management));
        var spool = Path.Combine(contentRoot.Path, "data", "audit-spool", "audit.spool");
        Assert.True(!File.Exists(spool) || new FileInfo(spool).Length == 0, "audit events went to the spool");
        var actions = File.ReadAllLines(Path.Combine(contentRoot.Path, "data", "audit-events.jsonl"))
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("action").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "read", "list", "watch", "rotate" }, actions);
    }

    [Fact]
    public void Git_ignores_what_the_documented_commands_create()
    {
        // Each path is what a command in README.md or clients/python/README.md writes.
        string[] created =
        [
            "services/Broker/data/audit-events.jsonl",                 // dotnet run --project services/Broker (Development audit file)
            "services/Broker/data/audit-events.jsonl.1",
            "services/Broker/data/audit-spool/audit.spool",            // the broker's audit spool
            "services/Audit/Service/data/audit.db",                    // dotnet run --project services/Audit/Service
            "services/Audit/Service/data/audit.db-wal",
            "dist/secretsbroker-0.1.0-py3-none-any.whl",               // pip wheel ... -w dist clients/python
            "clients/python/build/lib/secretsbroker/client.py",
            "clients/python/src/secretsbroker.egg-info/PKG-INFO",
            "tests/Benchmarks/artifacts/load.md",                      // bash tests/Benchmarks/run.sh
            "TestResults/results.trx",                                 // dotnet test --logger trx
        ];
        var notIgnored = created.Where(path => !IsIgnored(path)).ToList();
        Assert.Empty(notIgnored);
    }

    private static bool IsIgnored(string path)
    {
        using var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["-C", RepositoryLayout.Root, "check-ignore", "-q", "--no-index", path])
        {
            UseShellExecute = false,
        })!;
        git.WaitForExit();
        return git.ExitCode == 0;
    }

    private static async Task<string> ReadinessAsync(Uri management)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(management, "/healthz/ready"));
    }

    private static async Task<string> CreatedTimeAsync(Uri address, string path)
    {
        var (exitCode, stdout, stderr) = await RunBrokerCtlAsync(address, ["get", path]);
        Assert.True(exitCode == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        return json.RootElement.GetProperty("createdTime").GetString()!;
    }

    private static Dictionary<string, string?> DemoEnvironment(Uri address) => new()
    {
        ["SECRETSBROKER_ADDRESS"] = address.ToString(),
        ["SECRETSBROKER_TOKEN"] = "dev-only-token",
        ["SECRETSBROKER_TOKEN_FILE"] = null,
    };

    private static Task<(int ExitCode, string StandardOutput, string StandardError)> RunBrokerCtlAsync(Uri address, string[] arguments) =>
        ExternalProcess.RunAsync(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], DemoEnvironment(address));

    private static ExternalProcess StartBrokerCtl(Uri address, string[] arguments) =>
        ExternalProcess.Start(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], DemoEnvironment(address));

    [Fact]
    public async Task Outside_development_the_broker_refuses_dev_tokens_with_a_clear_message()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory,
            ["--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml", "--Broker:Policy:File=policies.dev.yaml",
             $"--Broker:Audit:Key={BrokerHost.TestAuditKey}",
             "--Broker:Auth:DevTokens:Tokens:0:Subject=x", $"--Broker:Auth:DevTokens:Tokens:0:Sha256={new string('a', 64)}"]);

        await broker.WaitForOutputAsync(line => line.Contains("DevTokens are for development", StringComparison.Ordinal));
        Assert.NotEqual(0, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_mounts_the_broker_refuses_to_start_and_says_what_to_configure()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory);

        await broker.WaitForOutputAsync(line => line.Contains("configure at least one mount", StringComparison.Ordinal));
        Assert.Equal(1, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_policy_file_the_broker_refuses_to_start_and_says_why()
    {
        using var directory = new TestDirectory();
        await using var broker = StartBroker("Production", directory,
            ["--Broker:Mounts:0:Prefix=demo", "--Broker:Mounts:0:Type=local", "--Broker:Mounts:0:File=demo-secrets.yaml"]);

        await broker.WaitForOutputAsync(line => line.Contains("Broker:Policy:File is required", StringComparison.Ordinal));
        Assert.Equal(1, await broker.WaitForExitAsync());
        Assert.DoesNotContain(broker.Output, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain(broker.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }

    /// <summary>
    /// The broker process as README's <c>dotnet run --project services/Broker</c> starts it (launchSettings: Development;
    /// content root services/Broker unless <paramref name="contentRoot"/>), on port 0 (management too) so parallel brokers
    /// cannot collide; its audit spool in <paramref name="spoolDirectory"/>'s folder when given, else its default.
    /// </summary>
    private static ExternalProcess StartBroker(string environment, TestDirectory? spoolDirectory, string[]? settings = null, string? contentRoot = null) =>
        ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", contentRoot ?? ContentRoot, "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0",
             .. spoolDirectory is null ? Array.Empty<string>() : [$"--Broker:Audit:SpoolDirectory={Path.Combine(spoolDirectory.Path, "audit-spool")}"],
             .. settings ?? []],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = environment });

    /// <summary>README's quick start: the brokerctl commands it shows (with "# exit N" where that is the expected exit) and the text it appends to the demo file.</summary>
    private sealed record ReadmeQuickStart(IReadOnlyList<(string[] Arguments, int ExpectedExit)> Commands, string Appended)
    {
        private const string CommandPrefix = "dotnet run --project clients/cli -- ";
        private const string AppendStart = "cat >> services/Broker/demo-secrets.yaml <<'EOF'";

        public static ReadmeQuickStart Read()
        {
            var readme = File.ReadAllText(Path.Combine(RepositoryLayout.Root, "README.md"));
            var start = readme.IndexOf("\n## Quick start\n", StringComparison.Ordinal);
            Assert.True(start >= 0, "README has no Quick start section");
            var end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
            var lines = readme[start..end].Split('\n');
            Assert.Contains("dotnet run --project services/Broker", lines);
            var commands = lines.Where(l => l.StartsWith(CommandPrefix, StringComparison.Ordinal)).Select(l =>
            {
                var parts = l[CommandPrefix.Length..].Split('#', 2);
                var expected = parts.Length == 2 && System.Text.RegularExpressions.Regex.Match(parts[1], @"exit (\d+)") is { Success: true } m
                    ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
                return (parts[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), expected);
            }).ToList();
            Assert.True(commands.Count >= 5, "README's quick start shows brokerctl commands");
            var append = Array.IndexOf(lines, AppendStart);
            Assert.True(append >= 0, "README's quick start appends a version to the demo file");
            var appended = string.Concat(lines.Skip(append + 1).TakeWhile(l => l != "EOF").Select(l => l + "\n"));
            return new ReadmeQuickStart(commands, appended);
        }
    }
}
