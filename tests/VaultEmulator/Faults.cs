using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>
/// Test-only fault switches, set with POST /__emulator/faults. Each counted fault applies to the next
/// N calls under <see cref="PathPrefix"/> (all of /v1/ when empty), then switches itself off. Drops,
/// rate limits and errors hit before Vault handles the call; lost responses hit after it (the work is
/// done, the answer never arrives), as when a proxy or the network fails on the way back.
/// </summary>
public sealed class FaultState
{
    private readonly Lock _lock = new();

    public int LatencyMs { get; private set; }
    public string PathPrefix { get; private set; } = "";
    public int RateLimitRemaining { get; private set; }
    public int RetryAfterSeconds { get; private set; }
    public int DropRemaining { get; private set; }
    public int ErrorRemaining { get; private set; }
    public int ErrorStatus { get; private set; } = 500;
    public int RateLimited { get; private set; }
    public int Dropped { get; private set; }
    public int Requests { get; private set; }
    /// <summary>Delay, after Vault handled a call under <see cref="PathPrefix"/>, before the answer goes out (a slow way back).</summary>
    public int LatencyAfterMs { get; private set; }
    public int LostResponseRemaining { get; private set; }

    /// <summary>0: a lost response drops the connection; otherwise it is answered with this status (a gateway that gave up on the answer).</summary>
    public int LostResponseStatus { get; private set; }
    public int LostResponses { get; private set; }

    /// <summary>Answer the LIST verb with 405, as a proxy, WAF or ingress in front of Vault that only passes standard HTTP methods.</summary>
    public bool RejectListVerb { get; private set; }

    public enum Action
    {
        None,
        RateLimit,
        Drop,
        Error,
    }

    public void Apply(JsonObject body, VaultState state)
    {
        lock (_lock)
        {
            LatencyMs = body["latency_ms"]?.GetValue<int>() ?? LatencyMs;
            PathPrefix = body["path_prefix"]?.GetValue<string>() ?? PathPrefix;
            RateLimitRemaining = body["rate_limit_count"]?.GetValue<int>() ?? RateLimitRemaining;
            RetryAfterSeconds = body["retry_after_seconds"]?.GetValue<int>() ?? RetryAfterSeconds;
            DropRemaining = body["drop_count"]?.GetValue<int>() ?? DropRemaining;
            ErrorRemaining = body["error_count"]?.GetValue<int>() ?? ErrorRemaining;
            ErrorStatus = body["error_status"]?.GetValue<int>() ?? ErrorStatus;
            LatencyAfterMs = body["latency_after_ms"]?.GetValue<int>() ?? LatencyAfterMs;
            LostResponseRemaining = body["lost_response_count"]?.GetValue<int>() ?? LostResponseRemaining;
            LostResponseStatus = body["lost_response_status"]?.GetValue<int>() ?? LostResponseStatus;
            RejectListVerb = body["reject_list_verb"]?.GetValue<bool>() ?? RejectListVerb;
            if (body.ContainsKey("expired_leases"))
            {
                state.ExpiredLeases = body["expired_leases"]?.GetValue<string>();
            }
            state.TokenErrorsBefore117 = body["token_errors_before_1_17"]?.GetValue<bool>() ?? state.TokenErrorsBefore117;
            state.Sealed = body["sealed"]?.GetValue<bool>() ?? state.Sealed;
            state.RenewSelfRefused = body["renew_self_refused"]?.GetValue<bool>() ?? state.RenewSelfRefused;
        }
    }

    public void Reset(VaultState state)
    {
        lock (_lock)
        {
            LatencyMs = 0;
            PathPrefix = "";
            RateLimitRemaining = 0;
            RetryAfterSeconds = 0;
            DropRemaining = 0;
            ErrorRemaining = 0;
            ErrorStatus = 500;
            LatencyAfterMs = 0;
            LostResponseRemaining = 0;
            LostResponseStatus = 0;
            RejectListVerb = false;
            state.ExpiredLeases = null;
            state.TokenErrorsBefore117 = false;
            state.Sealed = false;
            state.RenewSelfRefused = false;
        }
    }

    /// <summary>Counts a call to <paramref name="path"/> (without "/v1/") and decides which fault, if any, hits it.</summary>
    public Action Next(string path)
    {
        lock (_lock)
        {
            Requests++;
            if (!path.StartsWith(PathPrefix, StringComparison.Ordinal))
            {
                return Action.None;
            }
            if (DropRemaining > 0)
            {
                DropRemaining--;
                Dropped++;
                return Action.Drop;
            }
            if (RateLimitRemaining > 0)
            {
                RateLimitRemaining--;
                RateLimited++;
                return Action.RateLimit;
            }
            if (ErrorRemaining > 0)
            {
                ErrorRemaining--;
                return Action.Error;
            }
            return Action.None;
        }
    }

    /// <summary>How long to hold the answer to a handled call to <paramref name="path"/>.</summary>
    public int DelayAfterHandling(string path)
    {
        lock (_lock)
        {
            return path.StartsWith(PathPrefix, StringComparison.Ordinal) ? LatencyAfterMs : 0;
        }
    }

    /// <summary>After Vault handled a call to <paramref name="path"/>: null to answer normally, 0 to drop the connection, or a status to answer with.</summary>
    public int? AfterHandling(string path)
    {
        lock (_lock)
        {
            if (LostResponseRemaining <= 0 || !path.StartsWith(PathPrefix, StringComparison.Ordinal))
            {
                return null;
            }
            LostResponseRemaining--;
            LostResponses++;
            return LostResponseStatus;
        }
    }

    public JsonObject Describe(VaultState state)
    {
        lock (_lock)
        {
            var logins = new JsonObject();
            foreach (var (method, count) in state.LoginCounts())
            {
                logins[method] = count;
            }
            return new JsonObject
            {
                ["latency_ms"] = LatencyMs,
                ["path_prefix"] = PathPrefix,
                ["sealed"] = state.Sealed,
                ["renew_self_refused"] = state.RenewSelfRefused,
                ["rate_limit_count"] = RateLimitRemaining,
                ["retry_after_seconds"] = RetryAfterSeconds,
                ["drop_count"] = DropRemaining,
                ["error_count"] = ErrorRemaining,
                ["error_status"] = ErrorStatus,
                ["latency_after_ms"] = LatencyAfterMs,
                ["lost_response_count"] = LostResponseRemaining,
                ["lost_response_status"] = LostResponseStatus,
                ["reject_list_verb"] = RejectListVerb,
                ["expired_leases"] = state.ExpiredLeases,
                ["token_errors_before_1_17"] = state.TokenErrorsBefore117,
                ["stats"] = new JsonObject
                {
                    ["requests"] = Requests,
                    ["rate_limited"] = RateLimited,
                    ["dropped"] = Dropped,
                    ["lost_responses"] = LostResponses,
                    ["logins"] = logins,
                },
            };
        }
    }
}
