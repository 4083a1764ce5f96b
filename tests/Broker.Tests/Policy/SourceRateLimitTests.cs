using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using SecretsBroker.V1;
using Xunit.Abstractions;

namespace SecretsBroker.Broker.Tests.Policy;

/// <summary>
/// Security review (issue 17, item 5): 50,000 calls with a garbage token took 6 s and added 15.6 MB to the audit stream,
/// since nothing limited a source before authentication and every refusal was an event of its own. Now a source has a
/// budget before authentication (RESOURCE_EXHAUSTED beyond it), and repeated refusals from one source are recorded as the
/// first event plus one counted summary per interval. A real broker, a real redis-server, raw HTTP/2 from 127.0.0.1
/// (the flood) and 127.0.0.2 (a legitimate caller elsewhere).
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class SourceRateLimitTests(ITestOutputHelper output)
{
    private const string GetSecret = "/secretsbroker.v1.SecretsBroker/GetSecret";
    private const int SourceBudget = 50;
    private const int Flood = 2_000;

    [Fact]
    public async Task A_garbage_token_flood_is_limited_per_source_before_authentication_and_audited_as_counted_summaries()
    {
        await using var redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-flood-password" });
        var settings = CacheTestSettings.WithRedis(redis).MemoryMount("mem");
        settings["Broker:RateLimits:Enabled"] = "true";
        // A budget of 50 calls and one more an hour: deterministic however slow the machine is.
        settings["Broker:RateLimits:Source:TokenLimit"] = SourceBudget.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Broker:RateLimits:Source:TokensPerPeriod"] = "1";
        settings["Broker:RateLimits:Source:ReplenishmentPeriod"] = "01:00:00";
        // One interval for the whole test: the summaries are recorded when the broker stops.
        settings["Broker:RefusalAudit:Interval"] = "01:00:00";
        var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var body = RawGrpc.Frame(new GetSecretRequest { Path = "mem/alpha/db" });
        var answers = new ConcurrentBag<RawGrpc.Answer>();
        RawGrpc.Answer legitimate;
        RpcException limitedLegitimate;
        IReadOnlyList<MetricSample> metricsBefore, metricsAfter;
        int eventsBefore;
        try
        {
            metricsBefore = ManagementPort.Parse(await host.ScrapeAsync());
            eventsBefore = (await AuditStreamReader.ReadAllAsync(redis)).Count;
            using var flood = RawGrpc.CreateClient();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await Parallel.ForEachAsync(Enumerable.Range(0, Flood), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
                answers.Add(await RawGrpc.CallAsync(flood, host.Address, GetSecret, body, $"FAKE-garbage-token-{i}")));
            output.WriteLine($"{Flood} garbage-token calls in {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");

            using var elsewhere = RawGrpc.CreateClient(IPAddress.Parse("127.0.0.2"));
            legitimate = await RawGrpc.CallAsync(elsewhere, host.Address, GetSecret, body, BrokerHost.TestToken);
            // The budget is the source's, spent before authentication: a valid token from the flooding source waits too.
            limitedLegitimate = await Assert.ThrowsAsync<RpcException>(() => host.CreateClient().GetSecretAsync("mem/alpha/db"));
            metricsAfter = ManagementPort.Parse(await host.ScrapeAsync());
        }
        finally
        {
            await host.DisposeAsync();
        }

        Assert.Equal(SourceBudget, answers.Count(a => a.GrpcStatus == (int)StatusCode.Unauthenticated && a.GrpcMessage == "the bearer token is not valid"));
        var limited = answers.Where(a => a.GrpcStatus == (int)StatusCode.ResourceExhausted).ToList();
        Assert.Equal(Flood - SourceBudget, limited.Count);
        Assert.All(limited, a => Assert.StartsWith("rate limit exceeded for this source; retry after ", a.GrpcMessage, StringComparison.Ordinal));
        Assert.Equal(0, legitimate.GrpcStatus);
        Assert.Equal("FAKE-flood-password", GetSecretResponse.Parser.ParseFrom(Assert.Single(legitimate.Messages)).Secret.Data["password"]);
        Assert.Equal(StatusCode.ResourceExhausted, limitedLegitimate.StatusCode);
        Assert.True(limitedLegitimate.GetRpcStatus()!.GetDetail<RetryInfo>().RetryDelay.ToTimeSpan() > TimeSpan.Zero);

        // Metrics: exported at zero from start, then the refusals.
        Assert.Equal(0, metricsBefore.Sum("secretsbroker_rate_limit_refusals_total", ("scope", "source")));
        Assert.Contains(metricsBefore, s => s.Name == "secretsbroker_rate_limit_refusals_total" && s.Has("scope", "caller"));
        Assert.Equal(Flood - SourceBudget + 1, metricsAfter.Sum("secretsbroker_rate_limit_refusals_total", ("scope", "source")));

        // The audit stream: per kind of refusal from 127.0.0.1, its first event and one summary that counts the rest.
        var added = (await AuditStreamReader.ReadAllAsync(redis)).Skip(eventsBefore).Select(e => e.Event).ToList();
        var fromFlood = added.Where(e => e.SourceAddress.StartsWith("ipv4:127.0.0.1", StringComparison.Ordinal)).ToList();
        output.WriteLine($"audit events added: {added.Count}, {added.Sum(e => e.CalculateSize())} bytes; from the flooding source: {fromFlood.Count}");
        var authenticate = fromFlood.Where(e => e.Action == "authenticate").ToList();
        var rateLimit = fromFlood.Where(e => e.Action == "rate-limit").ToList();
        Assert.Equal(2, authenticate.Count);
        Assert.Equal(2, rateLimit.Count);
        Assert.Equal(4, fromFlood.Count);
        Assert.Equal(SourceBudget - 1, CountOf(Assert.Single(authenticate, e => CountOf(e.Reason) > 0).Reason));
        Assert.Equal(Flood - SourceBudget, CountOf(Assert.Single(rateLimit, e => CountOf(e.Reason) > 0).Reason));
        Assert.All(fromFlood, e => Assert.Equal(Decision.Deny, e.Decision));
        Assert.Equal("ipv4:127.0.0.1", Assert.Single(authenticate, e => CountOf(e.Reason) > 0).SourceAddress);
        Assert.Equal(Flood + 1, fromFlood.Sum(e => CountOf(e.Reason) + 1) - fromFlood.Count(e => CountOf(e.Reason) > 0));
        Assert.Single(added, e => e.Decision == Decision.Allow && e.SourceAddress.StartsWith("ipv4:127.0.0.2:", StringComparison.Ordinal));
    }

    private static int CountOf(string reason) =>
        Repeated().Match(reason) is { Success: true } match ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"\(repeated (\d+) more times from ")]
    private static partial Regex Repeated();
}
