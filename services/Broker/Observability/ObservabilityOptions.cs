using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// The management listener (<c>Broker:Management</c>): a second Kestrel server, HTTP/1.1 only, apart
/// from the gRPC port, serving Prometheus metrics and HTTP health for scrapers and probes.
/// </summary>
public sealed class ManagementOptions
{
    public const string SectionName = "Broker:Management";

    /// <summary>
    /// Where the management server listens, separated by ';' (port 0 picks a free port). Empty turns
    /// the management server off. In a container use <c>http://0.0.0.0:9464</c> so Prometheus can reach it.
    /// </summary>
    public string Urls { get; set; } = "http://127.0.0.1:9464";

    /// <summary>Path of the Prometheus scrape endpoint.</summary>
    [RegularExpression("^/[A-Za-z0-9/_.-]*$")]
    public string MetricsPath { get; set; } = "/metrics";
}

/// <summary>Optional OTLP trace export (<c>Broker:Tracing</c>); off unless an endpoint is configured.</summary>
public sealed class TracingOptions
{
    public const string SectionName = "Broker:Tracing";

    /// <summary>The collector, e.g. <c>http://otel-collector:4317</c> (gRPC) or <c>http://otel-collector:4318/v1/traces</c> (HTTP).</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
    [RegularExpression("^(grpc|http/protobuf)$")]
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Share of new traces (without a sampled parent) that are recorded and exported.</summary>
    [Range(0.0, 1.0)]
    public double SampleRatio { get; set; } = 1.0;

    /// <summary>How long finished spans wait before they are sent in a batch.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan ExportDelay { get; set; } = TimeSpan.FromSeconds(5);

    public bool Enabled => OtlpEndpoint is not null;
}

/// <summary>What readiness depends on (<c>Broker:Health</c>).</summary>
public sealed class BrokerHealthOptions
{
    public const string SectionName = "Broker:Health";

    /// <summary>
    /// Whether a failing backend probe makes the broker not ready (default true). False: a failing
    /// backend only degrades readiness (still SERVING); the broker keeps serving cached values and
    /// the other mounts.
    /// </summary>
    public bool BackendsRequired { get; set; } = true;

    /// <summary>With <see cref="BackendsRequired"/>: only these mount prefixes count (empty, the default: every mount).</summary>
    public List<string> RequiredMounts { get; set; } = [];

    /// <summary>How long a backend probe may take before it counts as failed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a probe result is reused, so frequent health checks do not load the backends. Zero probes on every check.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ProbeCacheDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Consecutive failed backend calls (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL) after which a mount without a probe is reported degraded.</summary>
    [Range(1, 1000)]
    public int DegradedAfterConsecutiveFailures { get; set; } = 5;

    /// <summary>Whether the broker is not ready while Redis is unreachable (by default a Redis outage only degrades: reads go on from L1 and the backends).</summary>
    public bool RedisRequired { get; set; }

    public bool IsRequired(string mountPrefix) =>
        BackendsRequired && (RequiredMounts.Count == 0 || RequiredMounts.Contains(mountPrefix, StringComparer.Ordinal));
}

[OptionsValidator]
public sealed partial class ManagementOptionsValidator : IValidateOptions<ManagementOptions>;

[OptionsValidator]
public sealed partial class TracingOptionsValidator : IValidateOptions<TracingOptions>;

[OptionsValidator]
public sealed partial class BrokerHealthOptionsValidator : IValidateOptions<BrokerHealthOptions>;

/// <summary>Checks the management URLs are absolute http URLs, so a typo stops the broker at start.</summary>
public sealed class ManagementUrlsValidator : IValidateOptions<ManagementOptions>
{
    public ValidateOptionsResult Validate(string? name, ManagementOptions options)
    {
        var failures = new List<string>();
        foreach (var url in SideServer.SplitUrls(options.Urls))
        {
            if (!Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal),
                    UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
            {
                failures.Add($"{ManagementOptions.SectionName}:Urls: '{url}' is not an http:// URL (the management port serves plain HTTP/1.1)");
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
