using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>The broker as a process, composed by Program.cs: its management port serves metrics and health as configured.</summary>
[Trait("Category", "Integration")]
public sealed class BrokerProcessTests
{
    [Fact]
    public async Task The_broker_process_serves_metrics_and_health_on_its_configured_management_port()
    {
        // Both listeners on port 0: each reports the address it got.
        await using var broker = ExternalProcess.Start(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerDll, "--contentRoot", Path.Combine(RepositoryLayout.Root, "services", "Broker"), "--urls", "http://127.0.0.1:0",
             "--Broker:Management:Urls=http://127.0.0.1:0"],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" });
        var address = await broker.WaitForListeningAddressAsync();
        var management = await broker.WaitForListeningAddressAsync("Management server listening on");
        // "Now listening on" is the gRPC port's alone: scripts and tests wait for it before they call.
        Assert.Equal(address.ToString(), Assert.Single(broker.ListeningAddresses()).ToString());
        Assert.NotEqual(address.Port, management.Port);

        var (exitCode, _, stderr) = await ExternalProcess.RunAsync(RepositoryLayout.DotNet,
            [RepositoryLayout.BrokerCtlDll, "get", "demo/ml/training-db"],
            new Dictionary<string, string?>
            {
                ["SECRETSBROKER_ADDRESS"] = address.ToString(),
                ["SECRETSBROKER_TOKEN"] = "dev-only-token",
                ["SECRETSBROKER_TOKEN_FILE"] = null,
            });
        Assert.True(exitCode == 0, stderr);

        using var http = new HttpClient();
        var metrics = new Uri(management, "/metrics");
        await Eventually.WaitUntilAsync(async () => ManagementPort.Parse(await http.GetStringAsync(metrics))
                .Sum("secretsbroker_grpc_server_requests_total", ("grpc_method", "GetSecret"), ("grpc_status", "OK")) >= 1,
            TimeSpan.FromSeconds(30), "the process's GetSecret in its /metrics");
        var text = await http.GetStringAsync(metrics);
        Assert.Contains("secretsbroker_backend_calls_total{", text, StringComparison.Ordinal);
        Assert.DoesNotContain("training-db", text, StringComparison.Ordinal);

        using var ready = await http.GetAsync(new Uri(management, "/healthz/ready"));
        Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
    }
}
