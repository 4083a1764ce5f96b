using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Audit;

/// <summary>Who is asking, from where, in which request: everything an audit event says besides the decision.</summary>
public sealed record AccessContext(CallerIdentity? Caller, string RequestId, string SourceAddress, string TraceId, string TokenHmac, long StartedAt)
{
    /// <summary>A context for code paths outside a gRPC call (tests, background work).</summary>
    public static AccessContext ForCaller(CallerIdentity caller) => new(caller, "", "", "", "", Stopwatch.GetTimestamp());
}

/// <summary>The actions audit events name.</summary>
public static class AuditActions
{
    public const string Authenticate = "authenticate";
    public const string Read = "read";
    public const string RateLimit = "rate-limit";
    public const string List = "list";
    public const string Issue = "issue";
    public const string Renew = "renew";
    public const string Revoke = "revoke";
    public const string Rotate = "rotate";
    public const string Watch = "watch";
}

/// <summary>
/// Turns access decisions into audit events and hands them to the <see cref="AuditRecorder"/>. Paths are
/// sealed with the audit key before they leave the process; tokens appear only as HMACs.
/// </summary>
public sealed class AccessAuditor(AuditRecorder recorder, IOptions<AuditOptions> options, TimeProvider time)
{
    private readonly AuditKey _key = AuditKey.FromBase64(options.Value.Key);
    private readonly string _instance = $"{Environment.MachineName}/{Environment.ProcessId}";

    // Event ids: a random half per auditor and a counter. Unique like a random GUID, without Guid.NewGuid's
    // read of the kernel's random source on every event (measured per read in docs/benchmarks.md).
    private readonly ulong _idPrefix = BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(sizeof(ulong)));
    private long _idCounter;

    // Prefix HMACs depend on the path alone, and a workload reads the same few paths again and again.
    // Bounded, so an unbounded set of paths costs recomputation, not memory.
    private readonly MemoryCache _prefixHmacs = new(new MemoryCacheOptions { SizeLimit = 10_000 });

    /// <summary>HMAC of a bearer token or lease id, as it appears in events.</summary>
    public string Hmac(ReadOnlySpan<char> value) => _key.Hmac(value);

    /// <summary>
    /// Records an allowed access that returns <paramref name="served"/>. In strict mode this completes only
    /// once the event is durable and throws UNAVAILABLE when it cannot be, so the value is never returned unaudited.
    /// </summary>
    public Task AllowedAsync(AccessContext context, string action, string path, ServedSecret? served, string? mount, CancellationToken cancellationToken) =>
        RecordAsync(context, action, path, mount ?? served?.Mount.Prefix, served, Decision.Allow, StatusCode.OK, "", cancellationToken);

    /// <summary>Records an allowed lease action (issue, renew, rotate, revoke); the lease id appears only as its HMAC.</summary>
    public Task LeaseAllowedAsync(AccessContext context, string action, string path, string mount, string leaseId, CancellationToken cancellationToken) =>
        RecordAsync(context, action, path, mount, null, Decision.Allow, StatusCode.OK, "", cancellationToken, leaseId);

    /// <summary>Records a refused or failed lease action; like <see cref="RefusedAsync"/>, never throws for an unrecordable event.</summary>
    public async Task LeaseRefusedAsync(AccessContext context, string action, string path, string? mount, string? leaseId, StatusCode status, string reason,
        CancellationToken cancellationToken)
    {
        var decision = status is StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.ResourceExhausted ? Decision.Deny : Decision.Error;
        try
        {
            await RecordAsync(context, action, path, mount, null, decision, status, reason, cancellationToken, leaseId).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            // Already counted as failed by the recorder; the refusal stands.
        }
    }

    /// <summary>
    /// Records the allowed reads of a batch as one group (one hand-over and, in strict mode, one wait);
    /// throws UNAVAILABLE unless every event of the group is durable.
    /// </summary>
    public Task AllowedManyAsync(AccessContext context, string action, IReadOnlyList<ServedSecret> served, CancellationToken cancellationToken)
    {
        var events = new byte[served.Count][];
        for (var i = 0; i < served.Count; i++)
        {
            events[i] = BuildEvent(context, action, served[i].Path, served[i].Mount.Prefix, served[i], Decision.Allow, StatusCode.OK, "");
        }
        return recorder.RecordManyAsync(events, cancellationToken);
    }

    /// <summary>
    /// Records a refused or failed access; the status decides between deny and error. The caller gets its
    /// refusal whether or not the event could be recorded (the recorder counts events it loses).
    /// </summary>
    public async Task RefusedAsync(AccessContext context, string action, string path, string? mount, StatusCode status, string reason,
        CancellationToken cancellationToken)
    {
        var decision = status is StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.ResourceExhausted ? Decision.Deny : Decision.Error;
        try
        {
            await RecordAsync(context, action, path, mount, null, decision, status, reason, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            // Already counted as failed by the recorder; the refusal stands.
        }
    }

    // Not async: the read awaits the recorder's own task (one suspended frame less per audited read).
    private Task RecordAsync(AccessContext context, string action, string path, string? mount, ServedSecret? served, Decision decision,
        StatusCode status, string reason, CancellationToken cancellationToken, string? leaseId = null) =>
        recorder.RecordAsync(BuildEvent(context, action, path, mount, served, decision, status, reason, leaseId), cancellationToken);

    /// <summary>The event as it goes to the stream: built, path sealed, serialized (internal for the micro-benchmarks).</summary>
    internal byte[] BuildEvent(AccessContext context, string action, string path, string? mount, ServedSecret? served, Decision decision,
        StatusCode status, string reason, string? leaseId = null)
    {
        var auditEvent = new AuditEvent
        {
            Id = NextEventId(),
            Time = Timestamp.FromDateTimeOffset(time.GetUtcNow()),
            BrokerInstance = _instance,
            RequestId = context.RequestId,
            TraceId = context.TraceId,
            Caller = context.Caller?.Subject ?? "",
            AuthMethod = context.Caller?.AuthMethod ?? "",
            SourceAddress = context.SourceAddress,
            Action = action,
            Path = path,
            Mount = mount ?? "",
            Version = served?.Value.Version ?? "",
            Decision = decision,
            Reason = reason,
            GrpcStatus = (int)status,
            CacheSource = served?.Source switch
            {
                null => "",
                ServingSource.L1 => "l1",
                ServingSource.L2 => "l2",
                _ => "backend",
            },
            Latency = Duration.FromTimeSpan(Stopwatch.GetElapsedTime(context.StartedAt)),
            TokenHmac = context.TokenHmac,
            LeaseIdHmac = leaseId is null ? "" : _key.Hmac(leaseId),
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

    private string NextEventId()
    {
        Span<byte> id = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(id, _idPrefix);
        BinaryPrimitives.WriteInt64LittleEndian(id[8..], Interlocked.Increment(ref _idCounter));
        return new Guid(id).ToString();
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
}
