using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// The broker's own instruments (meter <c>SecretsBroker.Broker</c>). Label values are bounded and
/// never carry data a caller chose: gRPC service and method names known to the server, status code
/// names, mount prefixes and types from configuration, operation and outcome names from this file.
/// Logical paths, secret names, versions and caller identities never become labels.
/// </summary>
public sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "SecretsBroker.Broker";

    /// <summary>Buckets in seconds, from sub-millisecond cache hits to slow backend calls near a deadline.</summary>
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Meter _meter;
    private readonly Counter<long> _grpcRequests;
    private readonly Histogram<double> _grpcDuration;

    public BrokerMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        var latency = new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets };
        _grpcRequests = _meter.CreateCounter<long>("secretsbroker.grpc.server.requests", unit: "{request}",
            description: "gRPC calls handled, by service, method and final status code");
        _grpcDuration = _meter.CreateHistogram("secretsbroker.grpc.server.duration", unit: "s",
            description: "gRPC call duration (whole stream for streaming calls), by service, method and status code", tags: null, advice: latency);
    }

    public void GrpcCallCompleted(string service, string method, StatusCode status, TimeSpan duration)
    {
        var tags = new TagList
        {
            { "grpc_service", service },
            { "grpc_method", method },
            { "grpc_status", StatusName(status) },
        };
        _grpcRequests.Add(1, tags);
        _grpcDuration.Record(duration.TotalSeconds, tags);
    }

    /// <summary>The canonical upper-case name of a status code (OK, NOT_FOUND, ...), as gRPC's own tooling writes it.</summary>
    public static string StatusName(StatusCode status) => status switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Unknown => "UNKNOWN",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.Aborted => "ABORTED",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.DataLoss => "DATA_LOSS",
        _ => "UNKNOWN",
    };

    public void Dispose() => _meter.Dispose();
}
