using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Secrets;

namespace SecretsBroker.Broker.Observability;

/// <summary>Operation names of backend calls, as they appear in the <c>operation</c> label.</summary>
public static class BackendOperations
{
    public const string Get = "get";
    public const string GetMany = "get_many";
    public const string List = "list";
}

/// <summary>
/// Measures every call the read path makes to a backend: a span, the call and latency metrics with
/// mount, mount type, operation and outcome, and the consecutive-failure count readiness looks at.
/// The outcome is the lower-case status name (<c>ok</c>, <c>not_found</c>, <c>unavailable</c>, ...);
/// an exception that is not a <see cref="BrokerException"/> counts as <c>internal</c>.
/// </summary>
public sealed class BackendCallObserver(BrokerMetrics metrics, IOptions<BrokerHealthOptions> healthOptions)
{
    private readonly ConcurrentDictionary<string, MountCallState> _states = new(StringComparer.Ordinal);

    public async Task<T> ObserveAsync<T>(MountDefinition mount, string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        using var activity = BrokerTelemetry.ActivitySource.StartActivity($"backend {operation}", ActivityKind.Client);
        activity?.SetTag("secretsbroker.mount", mount.Prefix);
        activity?.SetTag("secretsbroker.mount_type", mount.Type);
        var started = Stopwatch.GetTimestamp();
        var outcome = "ok";
        try
        {
            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            outcome = Outcome(ex.StatusCode);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        catch (Exception)
        {
            outcome = "internal";
            throw;
        }
        finally
        {
            metrics.BackendCallCompleted(mount.Prefix, mount.Type, operation, outcome, Stopwatch.GetElapsedTime(started));
            if (outcome != "ok")
            {
                activity?.SetStatus(ActivityStatusCode.Error, outcome);
            }
            Track(mount, outcome);
        }
    }

    /// <summary>Consecutive failed calls of a mount since its last successful one (NOT_FOUND and the like are answers, not failures).</summary>
    public int ConsecutiveFailures(MountDefinition mount) => _states.TryGetValue(mount.Prefix, out var state) ? state.ConsecutiveFailures : 0;

    /// <summary>Whether the mount's recent calls failed often enough to call it degraded.</summary>
    public bool LooksDown(MountDefinition mount) => ConsecutiveFailures(mount) >= healthOptions.Value.DegradedAfterConsecutiveFailures;

    public static string Outcome(StatusCode status) => BrokerMetrics.StatusName(status).ToLowerInvariant();

    private void Track(MountDefinition mount, string outcome)
    {
        var state = _states.GetOrAdd(mount.Prefix, _ => new MountCallState());
        if (outcome is "unavailable" or "deadline_exceeded" or "internal")
        {
            Interlocked.Increment(ref state.ConsecutiveFailures);
        }
        else if (outcome != "cancelled")
        {
            Interlocked.Exchange(ref state.ConsecutiveFailures, 0);
        }
    }

    private sealed class MountCallState
    {
        public int ConsecutiveFailures;
    }
}
