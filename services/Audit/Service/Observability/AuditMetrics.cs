using System.Diagnostics.Metrics;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Observability;

/// <summary>
/// The service's metrics (meter <c>SecretsBroker.Audit</c>, served on /metrics). Labels carry bounded values
/// only (decision, reason), never a caller, a path or a token: a label per caller would grow a series per caller,
/// and the store answers per-caller questions (Query by caller and decision).
/// </summary>
public sealed class AuditMetrics
{
    public const string MeterName = "SecretsBroker.Audit";

    private readonly Counter<long> _ingested;
    private readonly Counter<long> _duplicates;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _denied;
    private readonly Counter<long> _unauthenticated;

    private static readonly AuditEventMacFailure[] UnauthenticatedReasons =
        [AuditEventMacFailure.Missing, AuditEventMacFailure.Malformed, AuditEventMacFailure.UnknownKey, AuditEventMacFailure.Mismatch];
    private long _lag = -1;
    private long _pending = -1;
    private long _streamLength = -1;
    private readonly Counter<long> _trimmed;

    public AuditMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _ingested = meter.CreateCounter<long>("secretsbroker.audit.events.ingested", "{event}", "Events stored (first delivery of each event id).");
        _duplicates = meter.CreateCounter<long>("secretsbroker.audit.events.duplicate", "{event}", "Deliveries of an event id already stored (ignored).");
        _rejected = meter.CreateCounter<long>("secretsbroker.audit.entries.rejected", "{entry}", "Stream entries that are not audit events (recorded and acknowledged).");
        _unauthenticated = meter.CreateCounter<long>("secretsbroker.audit.events.unauthenticated", "{event}",
            "Events rejected because their MAC is missing, malformed, names an unknown key or does not match (forged or altered in Redis), by reason.");
        // Every reason from the start, at zero, so increase() sees the first rejection (a series born at 1 reads as no growth).
        foreach (var failure in UnauthenticatedReasons)
        {
            _unauthenticated.Add(0, Reason(failure));
        }
        _denied = meter.CreateCounter<long>("secretsbroker.audit.denied", "{event}", "Stored events with decision DENY (per caller: Query the store).");
        _denied.Add(0);
        meter.CreateObservableGauge("secretsbroker.audit.consumer.lag", () => Observe(Interlocked.Read(ref _lag)), "{entry}",
            "Entries in the stream not yet delivered to the consumer group (XINFO GROUPS lag).");
        meter.CreateObservableGauge("secretsbroker.audit.consumer.pending", () => Observe(Interlocked.Read(ref _pending)), "{entry}",
            "Entries delivered to the group but not yet acknowledged (XINFO GROUPS pending).");
        meter.CreateObservableGauge("secretsbroker.audit.stream.length", () => Observe(Interlocked.Read(ref _streamLength)), "{entry}",
            "Entries in the audit stream (XLEN): undelivered, pending, and acknowledged ones not yet trimmed.");
        _trimmed = meter.CreateCounter<long>("secretsbroker.audit.stream.trimmed", "{entry}", "Stored and acknowledged entries trimmed from the stream (XTRIM MINID).");
        _trimmed.Add(0);
    }

    /// <summary>Counts a committed batch: one Add per decision rather than one per event.</summary>
    public void Stored(IReadOnlyList<IncomingEvent> stored)
    {
        foreach (var group in stored.GroupBy(e => e.Event.Decision))
        {
            var count = group.Count();
            _ingested.Add(count, new KeyValuePair<string, object?>("decision", DecisionLabel(group.Key)));
            if (group.Key == Decision.Deny)
            {
                _denied.Add(count);
            }
        }
    }

    public void StreamLength(long length) => Interlocked.Exchange(ref _streamLength, length);

    public void Trimmed(long count) => _trimmed.Add(count);

    public void Duplicates(int count) => _duplicates.Add(count);

    public void Rejected(int count) => _rejected.Add(count);

    public void Unauthenticated(AuditEventMacFailure failure) => _unauthenticated.Add(1, Reason(failure));

    private static KeyValuePair<string, object?> Reason(AuditEventMacFailure failure) => new("reason", failure switch
    {
        AuditEventMacFailure.Missing => "missing",
        AuditEventMacFailure.Malformed => "malformed",
        AuditEventMacFailure.UnknownKey => "unknown_key",
        _ => "mismatch",
    });

    public void ConsumerState(long? lag, long pending)
    {
        Interlocked.Exchange(ref _lag, lag ?? -1);
        Interlocked.Exchange(ref _pending, pending);
    }

    private static IEnumerable<Measurement<long>> Observe(long value) => value < 0 ? [] : [new Measurement<long>(value)];

    private static string DecisionLabel(Decision decision) => decision switch
    {
        Decision.Allow => "allow",
        Decision.Deny => "deny",
        Decision.Error => "error",
        _ => "unspecified",
    };
}
