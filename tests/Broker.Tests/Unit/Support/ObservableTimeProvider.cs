using Microsoft.Extensions.Time.Testing;

namespace SecretsBroker.Broker.Tests.Unit.Support;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that also tells when code under test arms a timer (creates one, or changes
/// one, including the timers behind <c>Task.Delay(delay, timeProvider)</c>). Tests wait for "the loop is now
/// waiting for X" before they advance time, instead of sleeping and hoping the loop got there.
/// </summary>
public sealed class ObservableTimeProvider : FakeTimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<DateTimeOffset?> _armed = [];
    private readonly List<(Func<DateTimeOffset?, bool> Condition, TaskCompletionSource Done)> _waiters = [];

    public ObservableTimeProvider()
        : base(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ObservedTimer(this, base.CreateTimer(callback, state, dueTime, period));
        Record(dueTime);
        return timer;
    }

    /// <summary>Completes once a timer is armed (now or from now on) for a due time that satisfies <paramref name="condition"/>.</summary>
    public Task WaitForArmedAsync(Func<DateTimeOffset?, bool> condition)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_armed.Any(condition))
            {
                return Task.CompletedTask;
            }
            _waiters.Add((condition, done));
        }
        return done.Task.OrTimeout();
    }

    /// <summary>Completes once a timer is armed for exactly <paramref name="due"/>.</summary>
    public Task WaitForArmedAsync(DateTimeOffset due) => WaitForArmedAsync(armed => armed == due);

    /// <summary>Forgets what was armed so far, so the next wait sees only what happens from now on.</summary>
    public void ForgetArmed()
    {
        lock (_gate)
        {
            _armed.Clear();
        }
    }

    private void Record(TimeSpan dueTime)
    {
        DateTimeOffset? due = dueTime == Timeout.InfiniteTimeSpan ? null : GetUtcNow() + dueTime;
        List<TaskCompletionSource> ready = [];
        lock (_gate)
        {
            _armed.Add(due);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition(due))
                {
                    ready.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }
        foreach (var done in ready)
        {
            done.TrySetResult();
        }
    }

    private sealed class ObservedTimer(ObservableTimeProvider owner, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            owner.Record(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
