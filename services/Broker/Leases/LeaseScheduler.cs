namespace SecretsBroker.Broker.Leases;

/// <summary>
/// The one timer structure for every lease of a replica: a priority queue of due times and a single
/// <see cref="ITimer"/> from the <see cref="TimeProvider"/> set to the earliest of them. Work items are
/// plain values (no task or timer per lease); a cancelled item stays in the queue and is skipped when
/// it comes due (its generation no longer matches). Due work runs with bounded concurrency.
/// </summary>
public sealed class LeaseScheduler : IDisposable
{
    private static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(30);

    private readonly PriorityQueue<ScheduledJob, long> _queue = new();
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _armedFor = long.MaxValue;

    public LeaseScheduler(TimeProvider time)
    {
        _time = time;
        _timer = time.CreateTimer(static state => ((LeaseScheduler)state!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Items waiting in the queue (including cancelled ones not yet skipped).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    public void Schedule(ScheduledJob job)
    {
        var due = job.Due.UtcTicks;
        lock (_gate)
        {
            _queue.Enqueue(job, due);
            if (due < _armedFor)
            {
                _armedFor = due;
                _wake.TrySetResult();
            }
        }
    }

    /// <summary>Runs due work until <paramref name="cancellationToken"/> fires; <paramref name="run"/> gets each job and how late it started.</summary>
    public async Task RunAsync(Func<ScheduledJob, TimeSpan, Task> run, int maxConcurrency, CancellationToken cancellationToken)
    {
        using var concurrency = new SemaphoreSlim(maxConcurrency);
        var ready = new List<ScheduledJob>();
        while (!cancellationToken.IsCancellationRequested)
        {
            Task wake;
            lock (_gate)
            {
                var now = _time.GetUtcNow().UtcTicks;
                while (ready.Count < 1024 && _queue.TryPeek(out var job, out var due) && due <= now)
                {
                    ready.Add(_queue.Dequeue());
                }
                _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wake = _wake.Task;
                if (_queue.TryPeek(out _, out var next))
                {
                    _armedFor = next;
                    var wait = TimeSpan.FromTicks(Math.Max(0, next - now));
                    _timer.Change(wait > MaxWait ? MaxWait : wait, Timeout.InfiniteTimeSpan);
                }
                else
                {
                    _armedFor = long.MaxValue;
                    _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                }
            }
            if (ready.Count == 0)
            {
                try
                {
                    await wake.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            foreach (var job in ready)
            {
                try
                {
                    await concurrency.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                var lateness = _time.GetUtcNow() - job.Due;
                _ = RunOneAsync(run, job, lateness, concurrency);
            }
            ready.Clear();
        }
    }

    private static async Task RunOneAsync(Func<ScheduledJob, TimeSpan, Task> run, ScheduledJob job, TimeSpan lateness, SemaphoreSlim concurrency)
    {
        try
        {
            await Task.Yield();
            await run(job, lateness).ConfigureAwait(false);
        }
        finally
        {
            concurrency.Release();
        }
    }

    private void Wake()
    {
        lock (_gate)
        {
            _wake.TrySetResult();
        }
    }

    public void Dispose() => _timer.Dispose();
}

/// <summary>What a scheduled item does when it comes due.</summary>
public enum JobKind
{
    Renew,
    Rotate,
    RevokeRotated,
}

/// <summary>A unit of scheduled work: a value in the queue, not a timer or task.</summary>
public readonly record struct ScheduledJob(DateTimeOffset Due, JobKind Kind, LeaseState? Lease, long Generation);
