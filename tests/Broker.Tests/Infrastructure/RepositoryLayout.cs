namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>Where things are in the repository and in this test run's build output.</summary>
public static class RepositoryLayout
{
    public static string Root { get; } = FindRoot();

    /// <summary>brokerctl as built next to the tests (the test project references it).</summary>
    public static string BrokerCtlDll => Path.Combine(AppContext.BaseDirectory, "brokerctl.dll");

    /// <summary>The broker as built next to the tests (the test project references it).</summary>
    public static string BrokerDll => Path.Combine(AppContext.BaseDirectory, "SecretsBroker.Broker.dll");

    public static string DotNet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

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
