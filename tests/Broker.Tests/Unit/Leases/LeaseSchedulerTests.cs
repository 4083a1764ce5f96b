using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Tests.Unit.Support;

namespace SecretsBroker.Broker.Tests.Unit.Leases;

/// <summary>
/// The one timer structure of the lease keeper, on fake time: every step waits for the scheduler to arm its timer
/// before the test advances the clock, so no step depends on how fast the machine is.
/// </summary>
public sealed class LeaseSchedulerTests
{
    [Fact]
    public async Task Due_jobs_run_in_due_order_each_at_its_due_time()
    {
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        await using var runner = new RunningScheduler(time, maxConcurrency: 1);

        runner.Scheduler.Schedule(Job(start.AddSeconds(3), id: 3));
        runner.Scheduler.Schedule(Job(start.AddSeconds(1), id: 1));
        runner.Scheduler.Schedule(Job(start.AddSeconds(2), id: 2));

        for (var second = 1; second <= 3; second++)
        {
            await time.WaitForArmedAsync(start.AddSeconds(second));
            time.ForgetArmed();
            time.Advance(TimeSpan.FromSeconds(1));
            await runner.WaitForRunsAsync(second);
            Assert.Equal(second, runner.Runs.Count);
        }

        Assert.Equal([1L, 2L, 3L], runner.Runs.Select(r => r.Id));
        // Each started exactly at its due time: not before (negative) and not after.
        Assert.All(runner.Runs, r => Assert.Equal(TimeSpan.Zero, r.Lateness));
        Assert.Equal(0, runner.Scheduler.Count);
    }

    [Fact]
    public async Task A_job_due_before_the_armed_one_rearms_the_waiting_scheduler()
    {
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        await using var runner = new RunningScheduler(time, maxConcurrency: 4);

        runner.Scheduler.Schedule(Job(start.AddHours(1), id: 1));
        // Waits are capped at 30 minutes, so a far-off job never leaves one long timer behind.
        await time.WaitForArmedAsync(start.AddMinutes(30));

        time.ForgetArmed();
        runner.Scheduler.Schedule(Job(start.AddSeconds(5), id: 2));
        await time.WaitForArmedAsync(start.AddSeconds(5));
        time.Advance(TimeSpan.FromSeconds(5));
        await runner.WaitForRunsAsync(1);

        var early = Assert.Single(runner.Runs);
        Assert.Equal(2, early.Id);
        Assert.Equal(TimeSpan.Zero, early.Lateness);

        // The capped wait ends with nothing due, the timer is set again, and the far-off job still runs on time.
        var capped = start.AddSeconds(5).AddMinutes(30);
        await time.WaitForArmedAsync(capped);
        time.ForgetArmed();
        time.Advance(capped - time.GetUtcNow());
        await time.WaitForArmedAsync(start.AddHours(1));
        time.Advance(start.AddHours(1) - time.GetUtcNow());
        await runner.WaitForRunsAsync(2);
        Assert.Equal(1, runner.Runs[1].Id);
        Assert.Equal(TimeSpan.Zero, runner.Runs[1].Lateness);
    }

    [Fact]
    public async Task A_job_not_yet_due_does_not_run_when_an_earlier_one_does()
    {
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        await using var runner = new RunningScheduler(time, maxConcurrency: 4);
        runner.Scheduler.Schedule(Job(start.AddSeconds(10), id: 2));
        runner.Scheduler.Schedule(Job(start.AddSeconds(9), id: 1));

        await time.WaitForArmedAsync(start.AddSeconds(9));
        time.ForgetArmed();
        time.Advance(TimeSpan.FromSeconds(9));
        await runner.WaitForRunsAsync(1);
        // The loop went back to waiting, for the later job's due time: it was not taken with the earlier one.
        await time.WaitForArmedAsync(start.AddSeconds(10));
        Assert.Equal([1L], runner.Runs.Select(r => r.Id));
        Assert.Equal(1, runner.Scheduler.Count);

        time.Advance(TimeSpan.FromSeconds(1));
        await runner.WaitForRunsAsync(2);
        Assert.Equal(TimeSpan.Zero, runner.Runs[1].Lateness);
    }

    [Fact]
    public async Task No_more_than_max_concurrency_jobs_run_at_once()
    {
        const int jobs = 5;
        const int maxConcurrency = 2;
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        var gates = Enumerable.Range(1, jobs).ToDictionary(i => (long)i, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        var inFlight = 0;
        var maxInFlight = 0;
        var finished = 0;
        var released = 0;
        var allFinished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var runner = new RunningScheduler(time, maxConcurrency, async job =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref maxInFlight, now);
            await gates[job.Generation].Task;
            Interlocked.Decrement(ref inFlight);
            if (Interlocked.Increment(ref finished) == jobs)
            {
                allFinished.TrySetResult();
            }
        });
        for (var i = 1; i <= jobs; i++)
        {
            runner.Scheduler.Schedule(Job(start.AddSeconds(1), id: i));
        }
        await time.WaitForArmedAsync(start.AddSeconds(1));

        // Job bodies may start later than the loop hands them out (the thread pool decides), so the bound is checked
        // where the loop is: it sets its timer at the start of each pass. The pass that takes the five due jobs disarms
        // it (nothing left queued); the next pass comes only once all five were handed out, which a bound of two
        // allows only after three jobs finished, that is after three gates were released.
        time.ForgetArmed();
        var disarms = 0;
        var releasedWhenAllHandedOut = -1;
        var allHandedOut = time.WaitForArmedAsync(armed =>
        {
            if (armed is null && ++disarms == 2)
            {
                releasedWhenAllHandedOut = Volatile.Read(ref released);
                return true;
            }
            return false;
        });
        time.Advance(TimeSpan.FromSeconds(1));

        await runner.WaitForRunsAsync(maxConcurrency);
        // Free one slot at a time, in the order the jobs started; each freed slot lets exactly one more start.
        for (var k = 0; k < jobs; k++)
        {
            Interlocked.Increment(ref released);
            gates[runner.Runs[k].Id].TrySetResult();
            if (k + maxConcurrency < jobs)
            {
                await runner.WaitForRunsAsync(k + maxConcurrency + 1);
            }
        }
        await allFinished.Task.OrTimeout();
        await allHandedOut;

        // At least three: the test may already have released a fourth by the time the loop comes round.
        Assert.InRange(releasedWhenAllHandedOut, jobs - maxConcurrency, jobs);
        Assert.Equal(maxConcurrency, maxInFlight);
        Assert.Equal(jobs, runner.Runs.Select(r => r.Id).Distinct().Count());
    }

    [Fact]
    public async Task Lateness_is_how_long_after_its_due_time_a_job_started_including_the_wait_for_a_free_slot()
    {
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var runner = new RunningScheduler(time, maxConcurrency: 1, job => job.Generation == 1 ? releaseFirst.Task : Task.CompletedTask);
        runner.Scheduler.Schedule(Job(start.AddSeconds(1), id: 1));
        runner.Scheduler.Schedule(Job(start.AddSeconds(2), id: 2));

        await time.WaitForArmedAsync(start.AddSeconds(1));
        // The clock jumps past both due times (a stalled process): the first job starts 4 s late.
        time.Advance(TimeSpan.FromSeconds(5));
        await runner.WaitForRunsAsync(1);
        Assert.Equal(1, runner.Runs[0].Id);
        Assert.Equal(TimeSpan.FromSeconds(4), runner.Runs[0].Lateness);

        // The second, due at 2 s, waits for the only slot while another 10 s pass.
        time.Advance(TimeSpan.FromSeconds(10));
        releaseFirst.TrySetResult();
        await runner.WaitForRunsAsync(2);
        Assert.Equal(2, runner.Runs[1].Id);
        Assert.Equal(TimeSpan.FromSeconds(13), runner.Runs[1].Lateness);
    }

    [Fact]
    public async Task Stopping_ends_the_loop_and_runs_nothing_that_was_not_due()
    {
        var time = new ObservableTimeProvider();
        var start = time.GetUtcNow();
        var runner = new RunningScheduler(time, maxConcurrency: 1);
        runner.Scheduler.Schedule(Job(start.AddMinutes(1), id: 1));
        await time.WaitForArmedAsync(start.AddMinutes(1));

        await runner.DisposeAsync();

        Assert.True(runner.Loop.IsCompletedSuccessfully);
        Assert.Empty(runner.Runs);
    }

    private static ScheduledJob Job(DateTimeOffset due, long id) => new(due, JobKind.Renew, null, id);

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    private sealed record Run(long Id, TimeSpan Lateness);

    /// <summary>A scheduler loop on fake time that records each job it starts (id = the job's generation) and how late.</summary>
    private sealed class RunningScheduler : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Func<ScheduledJob, Task>? _body;
        private readonly Lock _gate = new();
        private readonly List<Run> _runs = [];
        private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];

        public RunningScheduler(TimeProvider time, int maxConcurrency, Func<ScheduledJob, Task>? body = null)
        {
            _body = body;
            Scheduler = new LeaseScheduler(time);
            Loop = Scheduler.RunAsync(RunAsync, maxConcurrency, _stop.Token);
        }

        public LeaseScheduler Scheduler { get; }

        public Task Loop { get; }

        public IReadOnlyList<Run> Runs
        {
            get
            {
                lock (_gate)
                {
                    return [.. _runs];
                }
            }
        }

        public Task WaitForRunsAsync(int count)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (_runs.Count >= count)
                {
                    return Task.CompletedTask;
                }
                _waiters.Add((count, done));
            }
            return done.Task.OrTimeout();
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await Loop.OrTimeout();
            Scheduler.Dispose();
            _stop.Dispose();
        }

        private async Task RunAsync(ScheduledJob job, TimeSpan lateness)
        {
            List<TaskCompletionSource> ready = [];
            lock (_gate)
            {
                _runs.Add(new Run(job.Generation, lateness));
                ready.AddRange(_waiters.Where(w => _runs.Count >= w.Count).Select(w => w.Done));
                _waiters.RemoveAll(w => _runs.Count >= w.Count);
            }
            foreach (var done in ready)
            {
                done.TrySetResult();
            }
            if (_body is not null)
            {
                await _body(job);
            }
        }
    }
}
