using Grpc.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>
/// Issue 18, "Expected outcomes are not warnings": statuses that answer the caller (NOT_FOUND, PERMISSION_DENIED,
/// INVALID_ARGUMENT, UNAUTHENTICATED ...) are logged at Debug at most and without a stack trace; Warning and above
/// are for what an operator must act on. A broker with the cache on, since FusionCache logged every factory
/// exception (a NOT_FOUND included) as a warning with its stack.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ExpectedOutcomeLoggingTests
{
    [Fact]
    public async Task Answers_to_the_caller_log_nothing_above_debug_and_no_stack_trace()
    {
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-logging-password" });
        var directory = new TestDirectory();
        directory.WriteFile("policy.yaml", """
            policies:
              - name: alpha
                appliesTo: { subjects: [test-alpha] }
                rules:
                  - paths: ["mem/alpha/**"]
                    capabilities: [read]
            """);
        var settings = BrokerHost.ShippedLogLevels();
        settings["Broker:Mounts:0:Prefix"] = "mem";
        settings["Broker:Mounts:0:Type"] = "memory";
        settings["Broker:Policy:File"] = "policy.yaml";
        await using var host = await BrokerHost.StartAsync(settings, directory, memory.Register);
        var client = host.CreateClient();
        await client.GetSecretAsync("mem/alpha/db");
        var before = host.Logs.Lines.Count;

        var outcomes = new List<StatusCode>();
        foreach (var call in new Func<Task>[]
        {
            () => client.GetSecretAsync("mem/alpha/missing"),
            () => client.GetSecretAsync("mem/alpha/missing"),
            () => client.GetSecretAsync("mem/beta/db"),
            () => client.GetSecretAsync("mem/alpha/../db"),
            () => host.CreateClient(token: "FAKE-wrong-token").GetSecretAsync("mem/alpha/db"),
            () => host.CreateClient(token: null).GetSecretAsync("mem/alpha/db"),
        })
        {
            outcomes.Add((await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
        }

        Assert.Equal(
            [StatusCode.NotFound, StatusCode.NotFound, StatusCode.PermissionDenied, StatusCode.InvalidArgument,
                StatusCode.Unauthenticated, StatusCode.Unauthenticated],
            outcomes);
        var lines = host.Logs.Lines.Skip(before).ToList();
        CapturedLogs.AssertDebugAtMostWithoutStackTraces(lines);
    }
}
