using System.Diagnostics;

namespace SecretsBroker.Broker.Auth;

/// <summary>Who is asking, from where, in which request: everything an audit event says besides the decision.</summary>
public sealed record AccessContext(CallerIdentity? Caller, string RequestId, string SourceAddress, string TraceId, string TokenHmac, long StartedAt)
{
    /// <summary>A context for work done on a caller's behalf outside a request (lease renewals, tests).</summary>
    public static AccessContext ForCaller(CallerIdentity caller) => new(caller, "", "", "", "", Stopwatch.GetTimestamp());
}
