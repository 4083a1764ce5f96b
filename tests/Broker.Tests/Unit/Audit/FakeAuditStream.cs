using System.Text;
using SecretsBroker.Broker.Audit;

namespace SecretsBroker.Broker.Tests.Unit.Audit;

/// <summary>
/// The Redis audit stream as <see cref="IAuditStream"/> promises it (and <see cref="RedisAuditStream"/> implements it):
/// an outage answers 0 appended instead of throwing, and a failure part-way appends a prefix of the events. Tests
/// take it down, bring it back, cut the next append short or hold it open.
/// </summary>
public sealed class FakeAuditStream : IAuditStream
{
    private readonly Lock _gate = new();
    private readonly List<string> _received = [];
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    private int? _acceptNext;
    private AppendHold? _hold;

    public bool IsConfigured => true;

    /// <summary>While set, every append answers 0 (RedisAuditStream does so when the multiplexer is not connected).</summary>
    public bool Down { get; set; }

    /// <summary>Events appended, in stream order, as text.</summary>
    public IReadOnlyList<string> Received
    {
        get
        {
            lock (_gate)
            {
                return [.. _received];
            }
        }
    }

    /// <summary>The next append takes only the first <paramref name="count"/> events, as a Redis failure after some entries would.</summary>
    public void AcceptOnlyNext(int count)
    {
        lock (_gate)
        {
            _acceptNext = count;
        }
    }

    /// <summary>Holds every append from now on until the hold is released (or the recorder gives up on the call).</summary>
    public AppendHold HoldAppends()
    {
        var hold = new AppendHold();
        lock (_gate)
        {
            _hold = hold;
        }
        return hold;
    }

    public Task WaitForReceivedAsync(int count)
    {
        var done = NewSignal();
        lock (_gate)
        {
            if (_received.Count >= count)
            {
                return Task.CompletedTask;
            }
            _waiters.Add((count, done));
        }
        return done.Task.WaitAsync(Support.TaskGuards.Limit);
    }

    public async Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken)
    {
        AppendHold? hold;
        lock (_gate)
        {
            hold = _hold;
        }
        if (hold is not null)
        {
            hold.Arrived.TrySetResult();
            // A call the recorder gives up on (timeout, stop) ends with OperationCanceledException, as RedisAuditStream's
            // wait for its connection does.
            await hold.Released.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        List<TaskCompletionSource> ready = [];
        int accepted;
        lock (_gate)
        {
            if (Down)
            {
                return 0;
            }
            accepted = Math.Min(events.Count, _acceptNext ?? events.Count);
            _acceptNext = null;
            _received.AddRange(events.Take(accepted).Select(e => Encoding.UTF8.GetString(e)));
            ready.AddRange(_waiters.Where(w => _received.Count >= w.Count).Select(w => w.Done));
            _waiters.RemoveAll(w => _received.Count >= w.Count);
        }
        foreach (var done in ready)
        {
            done.TrySetResult();
        }
        return accepted;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Appends held open: <see cref="Started"/> completes when the first held call arrives.</summary>
    public sealed class AppendHold
    {
        internal TaskCompletionSource Arrived { get; } = NewSignal();

        internal TaskCompletionSource Released { get; } = NewSignal();

        public Task Started => Arrived.Task.WaitAsync(Support.TaskGuards.Limit);

        public void Release() => Released.TrySetResult();
    }
}
