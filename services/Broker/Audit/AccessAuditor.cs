using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// Turns access decisions into audit events and hands them to the <see cref="AuditRecorder"/>. Paths are
/// sealed with the audit key before they leave the process; tokens appear only as HMACs.
/// </summary>
public sealed class AccessAuditor(AuditRecorder recorder, IOptions<AuditOptions> options, TimeProvider time) : IDisposable
{
    private readonly AuditKey _key = AuditKey.FromBase64(options.Value.Key);
    private readonly string _instance = $"{Environment.MachineName}/{Environment.ProcessId}";

    // Prefix HMACs depend on the path alone, and a workload reads the same few paths again and again.
    // Bounded, so an unbounded set of paths costs recomputation, not memory.
    private readonly MemoryCache _prefixHmacs = new(new MemoryCacheOptions { SizeLimit = 10_000 });

    /// <summary>HMAC of a bearer token or lease id, as it appears in events.</summary>
    public string Hmac(ReadOnlySpan<char> value) => _key.Hmac(value);

    /// <summary>
    /// Records an allowed access. In strict mode this completes only once the event is durable and throws UNAVAILABLE
    /// when it cannot be, so a value is never returned unaudited.
    /// </summary>
    public Task AllowedAsync(AccessContext context, AuditEntry entry, CancellationToken cancellationToken) =>
        recorder.RecordAsync(BuildEvent(context, entry, null, ""), cancellationToken);

    /// <summary>
    /// Records the allowed reads of a batch as one group (one hand-over and, in strict mode, one wait);
    /// throws UNAVAILABLE unless every event of the group is durable.
    /// </summary>
    public Task AllowedManyAsync(AccessContext context, string action, IReadOnlyList<ServedSecret> served, CancellationToken cancellationToken)
    {
        var events = new byte[served.Count][];
        for (var i = 0; i < served.Count; i++)
        {
            events[i] = BuildEvent(context, AuditEntry.ForServed(action, served[i]), null, "");
        }
        return recorder.RecordManyAsync(events, cancellationToken);
    }

    /// <summary>
    /// Records a refused or failed access; the error's kind decides between deny and error. The caller gets its
    /// refusal whether or not the event could be recorded (the recorder counts the events it loses).
    /// </summary>
    public async Task RefusedAsync(AccessContext context, AuditEntry entry, BrokerException error, CancellationToken cancellationToken)
    {
        try
        {
            await recorder.RecordAsync(BuildEvent(context, entry, error.Kind, error.Message), cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind == BrokerErrorKind.Unavailable)
        {
            // Already counted as failed by the recorder; the refusal stands.
        }
    }

    /// <summary>The event as it goes to the stream: built, path sealed, serialized (internal for the micro-benchmarks).</summary>
    internal byte[] BuildEvent(AccessContext context, AuditEntry entry, BrokerErrorKind? error, string reason)
    {
        // A malformed path (any length, any bytes) is left out; the reason says what was wrong with it.
        var path = entry.Path.Length == 0 || LogicalPath.Validate(entry.Path) is not null ? "" : entry.Path;
        var served = entry.Served;
        var now = time.GetUtcNow();
        var auditEvent = new AuditEvent
        {
            Id = AuditEventId.Next(now),
            Time = Timestamp.FromDateTimeOffset(now),
            BrokerInstance = _instance,
            RequestId = context.RequestId,
            TraceId = context.TraceId,
            Caller = context.Caller?.Subject ?? "",
            AuthMethod = context.Caller?.AuthMethod ?? "",
            SourceAddress = context.SourceAddress,
            Action = entry.Action,
            Path = path,
            Mount = entry.Mount ?? served?.Mount.Prefix ?? "",
            Version = served?.Value.Version ?? entry.Version ?? "",
            Decision = error switch { null => Decision.Allow, { } kind when kind.IsDenial() => Decision.Deny, _ => Decision.Error },
            Reason = reason,
            GrpcStatus = (int?)error ?? 0,
            CacheSource = served?.Source switch
            {
                null => "",
                ServingSource.L1 => "l1",
                ServingSource.L2 => "l2",
                _ => "backend",
            },
            Latency = Duration.FromTimeSpan(Stopwatch.GetElapsedTime(context.StartedAt)),
            TokenHmac = context.TokenHmac,
            LeaseIdHmac = entry.LeaseId is { Length: > 0 } leaseId ? _key.Hmac(leaseId) : "",
        };
        if (context.Caller is { } caller)
        {
            // Enumerated as the concrete dictionary it nearly always is: through the interface, every event
            // would box an enumerator.
            var attributes = caller.Attributes as Dictionary<string, string> ?? new Dictionary<string, string>(caller.Attributes, StringComparer.Ordinal);
            foreach (var (name, value) in attributes)
            {
                auditEvent.CallerAttributes[name] = value;
            }
        }
        _key.SealPath(auditEvent, path.Length == 0 ? null : PrefixHmacs(path));
        return auditEvent.ToByteArray();
    }

    private string[] PrefixHmacs(string path)
    {
        if (!_prefixHmacs.TryGetValue(path, out string[]? hmacs))
        {
            hmacs = _key.PathPrefixHmacs(path);
            _prefixHmacs.Set(path, hmacs, new MemoryCacheEntryOptions { Size = 1 });
        }
        return hmacs!;
    }

    public void Dispose()
    {
        _prefixHmacs.Dispose();
        _key.Dispose();
    }
}
