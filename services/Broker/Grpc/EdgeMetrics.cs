using System.Diagnostics.Metrics;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// Instruments of the edge (on the broker's meter, <c>SecretsBroker.Broker</c>): calls refused by a rate limit, by scope
/// (<c>source</c> before authentication, <c>caller</c> after it), and refusals counted into audit summaries instead of
/// recorded one by one. Observed from the counts the limiters and the summaries keep, so every series exists from start at zero.
/// </summary>
public sealed class EdgeMetrics
{
    public EdgeMetrics(IMeterFactory meterFactory, SourceRateLimiter sources, CallerRateLimiter callers, RefusalSummaries summaries)
    {
        var meter = meterFactory.Create(BrokerMetrics.MeterName);
        meter.CreateObservableCounter("secretsbroker.rate_limit.refusals", () => new Measurement<long>[]
        {
            new(sources.Rejections, new KeyValuePair<string, object?>("scope", "source")),
            new(callers.Rejections, new KeyValuePair<string, object?>("scope", "caller")),
        }, "{call}", "Calls refused by a rate limit: per source address before authentication, per caller after it");
        meter.CreateObservableCounter("secretsbroker.audit.refusals.summarized", () => summaries.FoldedSinceStart, "{call}",
            "Refusals counted into a summary audit event instead of recorded one by one (the first of each kind per source and interval is)");
    }
}
