namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>Where things are in the repository and in this test run's build output.</summary>
public static class RepositoryLayout
{
    public static string Root { get; } = FindRoot();

    /// <summary>The build configuration of this test run (Debug, Release), read off the output folder.</summary>
    public static string Configuration { get; } = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    /// <summary>brokerctl in its own build output (the test project references it, so it is built first).</summary>
    public static string BrokerCtlDll => BuildOutput("clients/cli", "brokerctl.dll");

    /// <summary>The broker in its own build output, with its own deps and runtime config.</summary>
    public static string BrokerDll => BuildOutput("services/Broker", "SecretsBroker.Broker.dll");

    public static string DotNet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>A project's output file for this configuration, e.g. BuildOutput("services/Broker", "SecretsBroker.Broker.dll").</summary>
    public static string BuildOutput(string projectFolder, string fileName)
    {
        var path = Path.Combine(Root, projectFolder, "bin", Configuration, "net10.0", fileName);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution first", path);
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Broker.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException("Broker.sln not found above the test output folder");
    }
}
