using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// One rotation per path at a time, across replicas: concurrent calls in this process share one task; across replicas the
/// path's lock decides who rotates, and the others wait for the holder's outcome and answer it. A failure is remembered
/// (keyed by an HMAC of the path) for retries with exponential backoff and for readiness, and cleared by the next success.
/// </summary>
public sealed partial class RotationFlights(
    RotationEngine engine,
    IRotationLocks locks,
    RotationMetrics metrics,
    MountTable mounts,
    AccessAuditor auditor,
    IOptions<RotationEngineOptions> options,
    TimeProvider time,
    ILogger<RotationFlights> logger) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Task<RotationResult>> _flights = new(StringComparer.Ordinal);
    // Rotations outlive the call that started them: a caller going away must not stop a rotation half way.
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Rotates <paramref name="path"/> (a validated logical path), or joins the rotation of it already running.</summary>
    public Task<RotationResult> RotateAsync(string path, CancellationToken cancellationToken)
    {
        engine.RuleFor(path);
        Task<RotationResult> flight;
        bool joined;
        lock (_gate)
        {
            joined = _flights.TryGetValue(path, out flight!);
            if (!joined)
            {
                var completion = new TaskCompletionSource<RotationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                flight = completion.Task;
                _flights[path] = flight;
                _ = RunAsync(path, completion);
            }
        }
        if (joined)
        {
            metrics.Joined(mounts.Resolve(path).Mounted.Mount.Prefix);
        }
        return flight.WaitAsync(cancellationToken);
    }

    /// <summary>Finishes a recorded unfinished rotation under the path's lock (start-up and scheduled recovery).</summary>
    public async Task RecoverAsync(string path)
    {
        lock (_gate)
        {
            if (_flights.ContainsKey(path))
            {
                return;
            }
        }
        var held = await locks.TryAcquireAsync(LockKey(path), Guid.NewGuid().ToString("n")).ConfigureAwait(false);
        if (held is null)
        {
            return;
        }
        try
        {
            await engine.RecoverAsync(path, _stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            await held.DisposeAsync().ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private async Task RunAsync(string path, TaskCompletionSource<RotationResult> completion)
    {
        await Task.Yield();
        var key = LockKey(path);
        try
        {
            var result = await RunUnderLockAsync(path, key).ConfigureAwait(false);
            metrics.MarkHealthy(key);
            Finish(path, () => completion.SetResult(result));
        }
        catch (Exception ex)
        {
            var error = ex as BrokerException ?? Unexpected(ex);
            RecordFailure(path, key, error);
            Finish(path, () => completion.SetException(error));
        }
    }

    private async Task<RotationResult> RunUnderLockAsync(string path, string key)
    {
        while (true)
        {
            var rotationId = Guid.NewGuid().ToString("n");
            // Before the attempt: any outcome after this one belongs to a rotation that overlapped these calls.
            var lastOutcomeId = await locks.LastOutcomeIdAsync(key).ConfigureAwait(false);
            var held = await locks.TryAcquireAsync(key, rotationId).ConfigureAwait(false);
            if (held is not null)
            {
                try
                {
                    var result = await engine.RotateAsync(path, _stopping.Token).ConfigureAwait(false);
                    await locks.PublishOutcomeAsync(key, rotationId, new RotationOutcome(result, null, null)).ConfigureAwait(false);
                    return result;
                }
                catch (BrokerException ex)
                {
                    await locks.PublishOutcomeAsync(key, rotationId, new RotationOutcome(null, ex.Kind, ex.Message)).ConfigureAwait(false);
                    throw;
                }
                finally
                {
                    await held.DisposeAsync().ConfigureAwait(false);
                }
            }
            // Another replica rotates this path now: its outcome is ours. No outcome (it died) means trying again.
            if (await locks.WaitForHolderAsync(key, lastOutcomeId, _stopping.Token).ConfigureAwait(false) is { } outcome)
            {
                return outcome.ResultOrThrow();
            }
        }
    }

    private void RecordFailure(string path, string key, BrokerException error)
    {
        var settings = options.Value;
        var attempts = metrics.Failing.TryGetValue(key, out var previous) ? previous.Attempts + 1 : 1;
        var delay = TimeSpan.FromTicks(Math.Min(settings.RetryMax.Ticks, settings.RetryBase.Ticks * (1L << Math.Min(attempts - 1, 20))));
        var mount = mounts.Resolve(path).Mounted.Mount.Prefix;
        metrics.MarkFailing(key, new RotationFailure(path, mount, error.Kind.Name(), attempts, time.GetUtcNow() + delay));
    }

    private void Finish(string path, Action complete)
    {
        lock (_gate)
        {
            _flights.Remove(path);
        }
        complete();
    }

    private BrokerException Unexpected(Exception ex)
    {
        LogUnexpected(ex.GetType().Name);
        return new BrokerException(BrokerErrorKind.Unavailable, "the rotation failed unexpectedly; the current version is untouched and it is retried");
    }

    /// <summary>The key of a path's rotation lock and failure record: an HMAC, never the path.</summary>
    public string LockKey(string path) => auditor.Hmac("rotation\0" + path);

    [LoggerMessage(Level = LogLevel.Error, Message = "Rotation failed unexpectedly ({ErrorType})")]
    private partial void LogUnexpected(string errorType);
}
