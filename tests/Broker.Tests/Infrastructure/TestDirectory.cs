namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>A temporary folder deleted at dispose.</summary>
public sealed class TestDirectory : IDisposable
{
    public TestDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "secretsbroker-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Writes <paramref name="content"/> to a file in this folder (atomically, by rename) and returns its full path.</summary>
    public string WriteFile(string name, string content)
    {
        var target = System.IO.Path.Combine(Path, name);
        var temporary = target + ".tmp-" + Guid.NewGuid().ToString("N");
        File.WriteAllText(temporary, content);
        File.Move(temporary, target, overwrite: true);
        return target;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process still holding a file must not fail the test that owned the folder.
        }
    }
}
