using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Crypto;

/// <summary>README's "Quick start: encrypting a file", run as the shell script it shows against the broker on its development defaults.</summary>
[Trait("Category", "Integration")]
public sealed class EnvelopeQuickStartTests
{
    private const string Section = "\n## Quick start: encrypting a file\n";

    [Fact]
    public async Task The_readme_encryption_quick_start_runs_as_shown()
    {
        using var contentRoot = new TestDirectory();
        foreach (var file in Cli.QuickStartTests.DevelopmentFiles)
        {
            File.Copy(Path.Combine(RepositoryLayout.Root, "services", "Broker", file), Path.Combine(contentRoot.Path, file));
        }
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", contentRoot.Path, "--urls", "http://127.0.0.1:0", "--Broker:Management:Urls=http://127.0.0.1:0"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        var address = await broker.WaitForListeningAddressAsync();
        using var work = new TestDirectory();

        // The README's commands as written, with brokerctl's build output for `dotnet run` and a private folder for /tmp.
        // /tmp/ first: the repository itself may live under /tmp (CI's clone), and its brokerctl path must stay as it is.
        var script = ReadBlock()
            .Replace("/tmp/", work.Path + "/", StringComparison.Ordinal)
            .Replace("dotnet run --project clients/cli --", $"dotnet \"{RepositoryLayout.BrokerCtlDll}\"", StringComparison.Ordinal);
        var (exitCode, stdout, stderr) = await ExternalProcess.RunAsync("/bin/sh", ["-c", script], new Dictionary<string, string?>
        {
            ["SECRETSBROKER_ADDRESS"] = address.ToString(),
            ["SECRETSBROKER_TOKEN_FILE"] = null,
        });

        Assert.True(exitCode == 0, stderr);
        Assert.Contains("identical", stdout);
        Assert.Contains("exit 7", stdout);
        Assert.EndsWith("FAKE-api-key", stdout);
        Assert.Contains("ENVELOPE_CONTEXT_MISMATCH", stderr);
        Assert.False(File.Exists(Path.Combine(work.Path, "other.pt")));
        Assert.DoesNotContain("FAKE checkpoint", await File.ReadAllTextAsync(Path.Combine(work.Path, "checkpoint.pt.sbef")));
    }

    private static string ReadBlock()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryLayout.Root, "README.md"));
        var start = readme.IndexOf(Section, StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no 'Quick start: encrypting a file' section");
        var open = readme.IndexOf("```sh\n", start, StringComparison.Ordinal) + "```sh\n".Length;
        return readme[open..readme.IndexOf("```", open, StringComparison.Ordinal)];
    }
}
