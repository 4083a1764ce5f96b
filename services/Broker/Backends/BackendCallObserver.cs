using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends;

/// <summary>Operation names of backend calls, as they appear in the <c>operation</c> label.</summary>
public static class BackendOperations
{
    public const string Get = "get";
    public const string GetMany = "get_many";
    public const string List = "list";
    public const string VersionProbe = "version";
    public const string Issue = "issue";
    public const string Renew = "renew";
    public const string Revoke = "revoke";
    public const string Encrypt = "encrypt";
    public const string Decrypt = "decrypt";
    public const string DataKey = "datakey";
    public const string Rewrap = "rewrap";
    public const string Write = "write";
    /// <summary>Staging labels moved, or the store's own rotation started (aws-sm).</summary>
    public const string Stage = "stage";

    /// <summary>Every operation a mount with these capabilities can see (the metric series that exist from start).</summary>
    public static IEnumerable<string> For(ISecretBackend backend)
    {
        if (backend is ISecretReading) { yield return Get; }
        if (backend is ISecretBatchReading) { yield return GetMany; }
        if (backend is ISecretListing) { yield return List; }
        if (backend is ISecretVersionProbe) { yield return VersionProbe; }
        if (backend is ICredentialIssuing) { yield return Issue; yield return Renew; yield return Revoke; }
        if (backend is IKeyStore) { yield return Encrypt; yield return Decrypt; yield return DataKey; yield return Rewrap; }
        if (backend is ISecretWriter) { yield return Write; }
        if (backend is ISecretStaging) { yield return Stage; }
    }
}

/// <summary>
/// Measures every call the broker makes to a backend, whatever the capability: a span, the call and latency
/// metrics with mount, mount type, operation and outcome, and the consecutive-failure count readiness looks at.
/// The outcome is the lower-case error kind (<c>ok</c>, <c>not_found</c>, <c>unavailable</c>, ...); an exception
/// that is not a <see cref="BrokerException"/> counts as <c>internal</c>. Label values come from configuration and
/// this file, never from a caller.
/// </summary>
public sealed class BackendCallObserver
{
    public const string MeterName = "SecretsBroker.Broker";

    /// <summary>Buckets in seconds, from sub-millisecond answers to slow backend calls near a deadline.</summary>
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly ConcurrentDictionary<string, MountCallState> _states = new(StringComparer.Ordinal);
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;

    public BackendCallObserver(IMeterFactory meterFactory)
    {
        // The factory owns the meter (shared with the broker's other instruments of this name) and disposes it.
        var meter = meterFactory.Create(MeterName);
        _calls = meter.CreateCounter<long>("secretsbroker.backend.calls", unit: "{call}",
            description: "Calls from the broker to secret backends, by mount, mount type, operation and outcome");
        _duration = meter.CreateHistogram("secretsbroker.backend.duration", unit: "s",
            description: "Backend call duration, by mount, mount type, operation and outcome", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    }

    /// <summary>Exports the mount's call counters at zero, so alerts on <c>increase()</c> see its first failure.</summary>
    public void Register(MountDefinition mount, ISecretBackend backend)
    {
        foreach (var operation in BackendOperations.For(backend))
        {
            _calls.Add(0, Tags(mount, operation, "ok"));
            _calls.Add(0, Tags(mount, operation, "unavailable"));
        }
    }

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
            outcome = Outcome(ex.Kind);
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
            var tags = Tags(mount, operation, outcome);
            _calls.Add(1, tags);
            _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
            if (outcome != "ok")
            {
                activity?.SetStatus(ActivityStatusCode.Error, outcome);
            }
            Track(mount, outcome);
        }
    }

    /// <summary>Consecutive failed calls of a mount since its last successful one (NOT_FOUND and the like are answers, not failures).</summary>
    public int ConsecutiveFailures(MountDefinition mount) => _states.TryGetValue(mount.Prefix, out var state) ? state.ConsecutiveFailures : 0;

    public static string Outcome(BrokerErrorKind kind) => kind.Name().ToLowerInvariant();

    private static TagList Tags(MountDefinition mount, string operation, string outcome) => new()
    {
        { "mount", mount.Prefix },
        { "mount_type", mount.Type },
        { "operation", operation },
        { "outcome", outcome },
    };

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
