using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Ingestion;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Grpc;

/// <summary>AuditLog over the store: Query and Tail (paths opened with the audit key for the answer), Verify, ComputeHmac.</summary>
public sealed partial class AuditLogService(IAuditStore store, AuditKey auditKey, StoredEventsSignal storedSignal, IOptions<TailOptions> tailOptions,
    TimeProvider time, ILogger<AuditLogService> logger) : AuditLog.AuditLogBase
{
    public const int DefaultLimit = 1000;
    public const int MaxLimit = 10_000;

    public override async Task Query(QueryRequest request, IServerStreamWriter<StoredEvent> responseStream, ServerCallContext context)
    {
        var filter = ToFilter(request);
        foreach (var record in store.Query(filter))
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            await responseStream.WriteAsync(ToAnswer(record)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Pages through the store by sequence (the same read any store answers for Query), then waits: for this
    /// process's ingestion to store a batch (<see cref="StoredEventsSignal"/>), or at most PollInterval, for records
    /// other replicas appended to a shared store. Ends when the client cancels.
    /// </summary>
    public override async Task Tail(TailRequest request, IServerStreamWriter<StoredEvent> responseStream, ServerCallContext context)
    {
        if (request.AfterSequence < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "after_sequence must not be negative"));
        }
        var options = tailOptions.Value;
        var after = request.AfterSequence;
        var cancellation = context.CancellationToken;
        while (!cancellation.IsCancellationRequested)
        {
            // Taken before the read: a batch committed after it completes this task, so it is not missed.
            var stored = storedSignal.Next;
            var page = store.Query(new QueryFilter(after, options.PageSize));
            foreach (var record in page)
            {
                await responseStream.WriteAsync(ToAnswer(record), cancellation).ConfigureAwait(false);
                after = record.Sequence;
            }
            if (page.Count < options.PageSize)
            {
                using var poll = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                await Task.WhenAny(stored, Task.Delay(options.PollInterval, time, poll.Token)).ConfigureAwait(false);
                await poll.CancelAsync().ConfigureAwait(false);
            }
        }
    }

    private StoredEvent ToAnswer(StoredRecord record)
    {
        var answer = new StoredEvent { Sequence = record.Sequence, PreviousHash = record.PreviousHash, Hash = record.Hash };
        // A damaged record is flagged in place, not skipped: skipping could return an empty page and end
        // a client's paging early. Verify reports it as broken.
        if (record.ParseEvent(out var unreadable) is { } auditEvent)
        {
            auditEvent.Path = auditKey.OpenPath(auditEvent) ?? "";
            answer.Event = auditEvent;
        }
        else
        {
            answer.Unreadable = unreadable;
            LogUnreadable(logger, record.Sequence, answer.Unreadable);
        }
        return answer;
    }

    public override Task<VerifyResponse> Verify(VerifyRequest request, ServerCallContext context)
    {
        var result = store.Verify(context.CancellationToken);
        return Task.FromResult(new VerifyResponse
        {
            Ok = result.Ok,
            RecordsChecked = result.RecordsChecked,
            FirstBrokenSequence = result.FirstBrokenSequence,
            Detail = result.Detail,
        });
    }

    public override Task<ComputeHmacResponse> ComputeHmac(ComputeHmacRequest request, ServerCallContext context)
    {
        if (request.Value.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "value is empty: give the token, lease id or path to hash"));
        }
        return Task.FromResult(new ComputeHmacResponse { Hmac = auditKey.Hmac(request.Value) });
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit record {Sequence} is unreadable ({Detail}); answered as unreadable, run Verify")]
    private static partial void LogUnreadable(ILogger logger, long sequence, string detail);

    private QueryFilter ToFilter(QueryRequest request)
    {
        if (request.Limit < 0 || request.Limit > MaxLimit)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"limit must be between 0 (meaning {DefaultLimit}) and {MaxLimit}"));
        }
        if (request.AfterSequence < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "after_sequence must not be negative"));
        }
        if (!System.Enum.IsDefined(request.Decision))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "decision is not a known Decision value"));
        }
        long? from = request.From is null ? null : ToNanos(request.From, "from");
        long? to = request.To is null ? null : ToNanos(request.To, "to");
        if (from is not null && to is not null && from > to)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "from must not be after to"));
        }
        // Prefixes match whole segments ("kv/teams" matches kv/teams/alpha/db, "kv/tea" does not).
        var prefix = request.PathPrefix.Trim('/');
        return new QueryFilter(
            AfterSequence: request.AfterSequence,
            Limit: request.Limit == 0 ? DefaultLimit : request.Limit,
            FromUnixNanos: from,
            ToUnixNanos: to,
            Caller: request.Caller.Length == 0 ? null : request.Caller,
            Action: request.Action.Length == 0 ? null : request.Action,
            Decision: request.Decision == Decision.Unspecified ? null : request.Decision,
            PathPrefixHmac: prefix.Length == 0 ? null : auditKey.Hmac(prefix));
    }

    private static long ToNanos(Google.Protobuf.WellKnownTypes.Timestamp timestamp, string field)
    {
        if (timestamp.Nanos is < 0 or > 999_999_999 || timestamp.Seconds is < -62_135_596_800 or > 253_402_300_799)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field} is not a valid timestamp"));
        }
        try
        {
            return checked(AuditStore.UnixNanos(timestamp));
        }
        catch (OverflowException)
        {
            // Beyond what the store's nanosecond column can hold (years before 1678 or after 2262): clamp.
            return timestamp.Seconds < 0 ? long.MinValue : long.MaxValue;
        }
    }
}
