using System.Diagnostics;
using System.Text.Json;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Leases;
using SecretsBroker.Broker.Tests.Vault;

namespace SecretsBroker.Broker.Tests.Cli;

/// <summary>brokerctl render and exec as real processes against a real broker (local mount; Vault emulator for leases; redis for audit).</summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes, signals and sh
public sealed class BrokerCtlRenderExecTests
{
    private const string Policy = """
        policies:
          - name: alpha-reads-team-app
            appliesTo: { subjects: [test-alpha] }
            rules:
              - paths: ["team/app/**"]
                capabilities: [read, list, watch]
        """;

    [Fact]
    public async Task Render_writes_the_template_with_secret_fields_to_a_0600_file_and_nothing_else()
    {
        await using var broker = await StartLocalAsync();
        var template = broker.Directory.WriteFile("app.conf.hbs",
            "user={{secret \"team/app/db\" \"username\"}}\npass={{secret \"team/app/db\" \"password\"}}\n" +
            "{{#with (secret \"team/app/db\")}}dsn=pg://{{username}}:{{password}}@db{{/with}}\njson={{secret \"team/app/api\"}}\n");
        var output = Path.Combine(broker.Directory.Path, "out", "app.conf");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);

        var (exitCode, stdout, stderr) = await RunAsync(broker, ["render", "--template", template, "--out", output]);

        Assert.True(exitCode == 0, stderr + string.Join('\n', broker.Logs.Lines.Where(l => l.Contains("rror", StringComparison.Ordinal) || l.Contains("xception", StringComparison.Ordinal))));
        Assert.Equal("user=app-user\npass=FAKE-render-v1\ndsn=pg://app-user:FAKE-render-v1@db\njson={\"key\":\"FAKE-api-key\"}\n", await File.ReadAllTextAsync(output));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(output));
        Assert.Equal(["app.conf"], Directory.GetFiles(Path.GetDirectoryName(output)!).Select(Path.GetFileName));
        Assert.Contains("\"changed\":true", stdout);
    }

    [Theory]
    [InlineData("x={{secret \"team/app/missing\" \"password\"}}", 3, "NOT_FOUND", "team/app/missing")]
    [InlineData("x={{secret \"team/app/db\" \"pasword\"}}", 3, "NOT_FOUND", "its fields: password, username")]
    [InlineData("x={{#with (secret \"team/app/db\")}}{{pasword}}{{/with}}", 9, "TEMPLATE_ERROR", "pasword")]
    [InlineData("x={{secret \"team/app/db\" \"password\"", 9, "TEMPLATE_ERROR", "template")]
    [InlineData("x={{secret}}", 9, "TEMPLATE_ERROR", "takes a path")]
    public async Task A_template_error_or_missing_secret_exits_with_its_code_and_writes_no_file(string text, int expectedExit, string expectedCode, string expectedMessage)
    {
        await using var broker = await StartLocalAsync();
        var template = broker.Directory.WriteFile("bad.hbs", "ok={{secret \"team/app/db\" \"password\"}}\n" + text);
        var output = Path.Combine(broker.Directory.Path, "bad.conf");

        var (exitCode, _, stderr) = await RunAsync(broker, ["render", "--template", template, "--out", output]);

        Assert.True(exitCode == expectedExit, $"exit {exitCode}: {stderr}");
        Assert.Contains(expectedCode, stderr);
        Assert.Contains(expectedMessage, stderr);
        Assert.DoesNotContain("FAKE-render", stderr);
        Assert.False(File.Exists(output));
        Assert.DoesNotContain(Directory.GetFiles(broker.Directory.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Render_watch_renders_again_when_a_referenced_secret_changes_and_runs_the_command_after()
    {
        await using var broker = await StartLocalAsync();
        var template = broker.Directory.WriteFile("watch.hbs", "pass={{secret \"team/app/db\" \"password\"}}\n");
        var output = Path.Combine(broker.Directory.Path, "watch.conf");
        var marker = Path.Combine(broker.Directory.Path, "renders.log");
        await using var brokerctl = Start(broker, ["render", "--template", template, "--out", output, "--watch", "--exec-after", $"echo rendered >> '{marker}'"]);
        await brokerctl.WaitForOutputAsync(line => line.Contains("\"rendered\"", StringComparison.Ordinal));
        Assert.Equal("pass=FAKE-render-v1\n", await File.ReadAllTextAsync(output));

        // The watch is in place once its stream opened, which the test cannot see: publish versions until one is rendered.
        var versions = 1;
        await Eventually.WaitUntilAsync(async () =>
        {
            broker.Directory.WriteFile("team.yaml", TeamFile(++versions));
            var waited = Stopwatch.StartNew();
            while (await File.ReadAllTextAsync(output) == "pass=FAKE-render-v1\n" && waited.Elapsed < TimeSpan.FromSeconds(1))
            {
                Assert.False(brokerctl.HasExited, string.Join('\n', brokerctl.Output));
                await Task.Delay(25);
            }
            return await File.ReadAllTextAsync(output) != "pass=FAKE-render-v1\n";
        }, TimeSpan.FromSeconds(30), "the file is rendered again with a new version");

        Assert.Matches("^pass=FAKE-render-v[2-9][0-9]*\n$", await File.ReadAllTextAsync(output));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(output));
        await Eventually.WaitUntilAsync(() => File.Exists(marker) && File.ReadAllLines(marker).Length >= 2, TimeSpan.FromSeconds(10), "--exec-after ran after each render");
        Signal(brokerctl.Id, "TERM");
        Assert.Equal(0, await brokerctl.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Render_watch_renders_again_when_its_lease_rotates_signals_the_process_and_revokes_the_leases_when_stopped()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        var template = broker.Directory.WriteFile("lease.hbs", "{{#with (lease \"db/short\")}}user={{username}}{{/with}}\n");
        var output = Path.Combine(broker.Directory.Path, "lease.conf");
        var hups = Path.Combine(broker.Directory.Path, "hups.log");
        await using var reloader = ExternalProcess.Start("sh", ["-c", $"trap 'echo hup >> \"{hups}\"' HUP; echo ready; while :; do sleep 0.1; done"]);
        await reloader.WaitForOutputAsync(line => line == "ready");
        await using var brokerctl = Start(broker, ["render", "--template", template, "--out", output, "--watch", "--signal", "HUP", "--pid",
            reloader.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await brokerctl.WaitForOutputAsync(line => line.Contains("\"rendered\"", StringComparison.Ordinal));
        var first = await File.ReadAllTextAsync(output);
        Assert.Equal($"user={Assert.Single(vault.State.DescribeLeases())!["credential"]!.GetValue<string>()}\n", first);

        // Role "short" has a max TTL of 12 s: the broker rotates the lease before then, and the file follows.
        await Eventually.WaitUntilAsync(async () => await File.ReadAllTextAsync(output) != first, TimeSpan.FromSeconds(40), "the file is rendered with the rotated credentials");

        var rendered = (await File.ReadAllTextAsync(output))["user=".Length..].TrimEnd('\n');
        Assert.Contains(vault.State.DescribeLeases(), l => l!["credential"]!.GetValue<string>() == rendered && l["live"]!.GetValue<bool>());
        await Eventually.WaitUntilAsync(() => File.Exists(hups) && File.ReadAllLines(hups).Length >= 2, TimeSpan.FromSeconds(10), "the process got SIGHUP after each render");
        Signal(brokerctl.Id, "TERM");
        Assert.Equal(0, await brokerctl.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await Eventually.WaitUntilAsync(() => vault.State.DescribeLeases().All(l => l!["revoked"]!.GetValue<bool>()), TimeSpan.FromSeconds(10),
            "every lease the render held is revoked");
    }

    [Fact]
    public async Task Exec_passes_secret_files_in_a_private_directory_and_removes_them_when_the_command_exits()
    {
        await using var broker = await StartLocalAsync();
        var root = Path.Combine(broker.Directory.Path, "run");
        Directory.CreateDirectory(root);

        var (exitCode, stdout, stderr) = await RunAsync(broker,
            ["exec", "--dir", root, "--secret", "DB_PASSWORD=team/app/db#password", "--secret", "API=team/app/api", "--",
             "sh", "-c", "echo \"dir=$SECRETSBROKER_SECRETS_DIR\"; stat -c 'mode=%a' \"$SECRETSBROKER_SECRETS_DIR\" \"$DB_PASSWORD\" \"$API\"; " +
             "echo \"pw=$(cat \"$DB_PASSWORD\")\"; echo \"api=$(cat \"$API\")\"; exit 5"]);

        Assert.True(exitCode == 5, $"exit {exitCode}: {stderr}");
        var lines = stdout.Split('\n');
        var directory = lines.Single(l => l.StartsWith("dir=", StringComparison.Ordinal))[4..];
        Assert.StartsWith(root, directory);
        Assert.Equal(["mode=700", "mode=600", "mode=600"], lines.Where(l => l.StartsWith("mode=", StringComparison.Ordinal)));
        Assert.Contains("pw=FAKE-render-v1", lines);
        Assert.Contains("api={\"key\":\"FAKE-api-key\"}", lines);
        Assert.False(Directory.Exists(directory), "the secrets directory is still there");
        Assert.Empty(Directory.GetFileSystemEntries(root));
        Assert.DoesNotContain("warning", stderr);
    }

    [Fact]
    public async Task Exec_forwards_sigterm_passes_on_the_exit_code_and_removes_the_files_and_a_crash_removes_them_too()
    {
        await using var broker = await StartLocalAsync();
        await using var brokerctl = Start(broker, ["exec", "--secret", "PW=team/app/db#password", "--",
            "sh", "-c", "trap 'exit 42' TERM; echo \"file=$PW\"; while :; do sleep 0.1; done"]);
        var file = (await brokerctl.WaitForOutputAsync(line => line.StartsWith("file=", StringComparison.Ordinal)))[5..];
        Assert.Equal("FAKE-render-v1", await File.ReadAllTextAsync(file));

        Signal(brokerctl.Id, "TERM");

        Assert.Equal(42, await brokerctl.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(Directory.Exists(Path.GetDirectoryName(file)), "the secrets directory is still there");

        var (exitCode, stdout, stderr) = await RunAsync(broker, ["exec", "--secret", "PW=team/app/db#password", "--", "sh", "-c", "echo \"file=$PW\"; kill -SEGV $$"]);
        Assert.True(exitCode == 128 + 11, $"exit {exitCode}: {stderr}");
        Assert.False(File.Exists(stdout.Trim()[5..]));
    }

    [Fact]
    public async Task Exec_env_puts_the_value_in_the_environment_only_when_asked_and_warns()
    {
        await using var broker = await StartLocalAsync();

        var (exitCode, stdout, stderr) = await RunAsync(broker, ["exec", "--env", "PW=team/app/db#password", "--", "sh", "-c", "printf %s \"$PW\""]);

        Assert.True(exitCode == 0, stderr);
        Assert.Equal("FAKE-render-v1", stdout);
        using var warning = JsonDocument.Parse(stderr);
        Assert.Equal("SECRET_IN_ENVIRONMENT", warning.RootElement.GetProperty("warning").GetProperty("code").GetString());
        Assert.Contains("crash dumps", warning.RootElement.GetProperty("warning").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Exec_lease_keeps_the_credentials_in_a_file_while_the_command_runs_and_revokes_them_after()
    {
        await using var vault = await VaultEmulatorHost.StartAsync(LeaseTestEnvironment.Seed);
        await using var broker = await BrokerHost.StartAsync(LeaseTestEnvironment.Broker(vault));
        await using var brokerctl = Start(broker, ["exec", "--lease", "DB=db/steady", "--lease", "DB_USER=db/steady#username", "--",
            "sh", "-c", "echo \"json=$(cat \"$DB\")\"; echo \"user=$(cat \"$DB_USER\")\"; trap 'exit 3' TERM; while :; do sleep 0.1; done"]);

        var user = (await brokerctl.WaitForOutputAsync(line => line.StartsWith("user=", StringComparison.Ordinal)))[5..];
        var lease = Assert.Single(vault.State.DescribeLeases())!;
        Assert.Equal(lease["credential"]!.GetValue<string>(), user);
        using (var json = JsonDocument.Parse(brokerctl.Output.Single(l => l.StartsWith("json=", StringComparison.Ordinal))[5..]))
        {
            Assert.Equal(user, json.RootElement.GetProperty("username").GetString());
        }
        // One lease for the role, however many names read it, renewed while the command runs (its TTL is 4 s).
        var expiries = new HashSet<string> { lease["expire_time"]!.GetValue<string>() };
        await Eventually.WaitUntilAsync(() =>
        {
            var current = Assert.Single(vault.State.DescribeLeases())!;
            Assert.True(current["live"]!.GetValue<bool>(), "the lease expired while the command ran");
            expiries.Add(current["expire_time"]!.GetValue<string>());
            return expiries.Count >= 3;
        }, TimeSpan.FromSeconds(30), "the lease is renewed twice");

        Signal(brokerctl.Id, "TERM");

        Assert.Equal(3, await brokerctl.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(true, LeaseTestEnvironment.LeaseState(vault, lease["lease_id"]!.GetValue<string>())?.Revoked);
    }

    [Fact]
    public async Task A_policy_denial_exits_4_with_a_clear_error_writes_nothing_and_is_audited()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var broker = await StartLocalAsync(redis);
        var template = broker.Directory.WriteFile("denied.hbs", "x={{secret \"team/other/db\" \"password\"}}\n");
        var output = Path.Combine(broker.Directory.Path, "denied.conf");

        var (renderExit, _, renderError) = await RunAsync(broker, ["render", "--template", template, "--out", output]);
        var (execExit, execOutput, execError) = await RunAsync(broker, ["exec", "--secret", "X=team/other/db", "--", "echo", "ran"]);

        Assert.True(renderExit == 4, $"exit {renderExit}: {renderError}");
        Assert.Contains("PERMISSION_DENIED", renderError);
        Assert.Contains("team/other/db", renderError);
        Assert.False(File.Exists(output));
        Assert.True(execExit == 4, $"exit {execExit}: {execError}");
        Assert.DoesNotContain("ran", execOutput);
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(redis))
            .Count(e => e.Path == "team/other/db" && e.Event.Decision == Decision.Deny && e.Event.Caller == "test-alpha") == 2,
            TimeSpan.FromSeconds(30), "both refusals are audited");
    }

    private static async Task<BrokerHost> StartLocalAsync(RedisServer? redis = null)
    {
        var directory = new TestDirectory();
        directory.WriteFile("team.yaml", TeamFile(1));
        directory.WriteFile("policy.yaml", Policy);
        var settings = redis is null ? CacheTestSettings.InProcessOnly() : CacheTestSettings.WithRedis(redis);
        settings["Broker:Mounts:0:Prefix"] = "team";
        settings["Broker:Mounts:0:Type"] = "local";
        settings["Broker:Mounts:0:File"] = "team.yaml";
        settings["Broker:Watch:PollInterval"] = "00:00:00.200";
        settings["Broker:Policy:File"] = "policy.yaml";
        return await BrokerHost.StartAsync(settings, directory);
    }

    private static string TeamFile(int versions) =>
        "secrets:\n  app/db:\n    versions:\n" +
        string.Concat(Enumerable.Range(1, versions).Select(i => $"      - data: {{ username: app-user, password: FAKE-render-v{i} }}\n")) +
        "  app/api:\n    versions:\n      - data: { key: FAKE-api-key }\n" +
        "  other/db:\n    versions:\n      - data: { password: FAKE-other }\n";

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static Dictionary<string, string?> Environment(BrokerHost broker) => new()
    {
        ["SECRETSBROKER_TOKEN"] = BrokerHost.TestToken,
        ["SECRETSBROKER_TOKEN_FILE"] = null,
        ["SECRETSBROKER_ADDRESS"] = broker.Address.ToString(),
    };

    private static Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(BrokerHost broker, string[] arguments) =>
        ExternalProcess.RunAsync(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], Environment(broker));

    private static ExternalProcess Start(BrokerHost broker, string[] arguments) =>
        ExternalProcess.Start(RepositoryLayout.DotNet, [RepositoryLayout.BrokerCtlDll, .. arguments], Environment(broker));
}
