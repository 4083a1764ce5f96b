using System.Threading.Channels;
using Grpc.Core;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>
/// What tells <c>render --watch</c> and <c>exec</c> to write their files again: a WatchSecrets stream on the
/// secrets the last render referenced (reopened when that set changes, and with backoff when it breaks, after
/// which everything is read again since events may have been missed) and the events of each lease keeper
/// (a rotation or a fresh lease replaces the credentials). A watch the broker refuses (PERMISSION_DENIED,
/// UNAUTHENTICATED, INVALID_ARGUMENT) ends the feed with that failure.
/// </summary>
internal sealed class ChangeFeed(CallContext call, SecretSource source, bool watchSecrets) : IAsyncDisposable
{
    private readonly Channel<string> _changes = Channel.CreateUnbounded<string>();
    private readonly Channel<bool> _pathsChanged = Channel.CreateUnbounded<bool>();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly HashSet<LeaseKeeper> _followed = [];
    private IReadOnlySet<string> _watched = new HashSet<string>();
    private MaterializeException? _failure;
    private bool _watching;

    /// <summary>Starts following what the last render referenced: new keepers, and a new watch when the paths changed.</summary>
    public void Follow()
    {
        foreach (var keeper in source.Keepers.Where(_followed.Add))
        {
            _tasks.Add(FollowLeaseAsync(keeper, _stop.Token));
        }
        if (!watchSecrets)
        {
            return;
        }
        if (!_watching)
        {
            _watching = true;
            _tasks.Add(WatchSecretsAsync(_stop.Token));
        }
        if (!source.ReferencedPaths.SetEquals(_watched))
        {
            _pathsChanged.Writer.TryWrite(true);
        }
    }

    /// <summary>Waits for the next change and drains the ones already queued; throws the failure that ended the feed.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        await _changes.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
        while (_changes.Reader.TryRead(out _))
        {
        }
        if (_failure is not null)
        {
            throw _failure;
        }
    }

    private async Task FollowLeaseAsync(LeaseKeeper keeper, CancellationToken cancellationToken)
    {
        var rendered = keeper.Current.LeaseId;
        try
        {
            await foreach (var _ in keeper.ChangesAsync(cancellationToken).ConfigureAwait(false))
            {
                if (keeper.Lost)
                {
                    Fail(new MaterializeException(ExitCodes.LeaseLost, "LEASE_LOST", $"the broker no longer keeps the lease of role '{keeper.Current.Path}' alive for this caller"));
                    return;
                }
                if (keeper.Current.LeaseId != rendered)
                {
                    rendered = keeper.Current.LeaseId;
                    _changes.Writer.TryWrite("lease");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WatchSecretsAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            while (_pathsChanged.Reader.TryRead(out _))
            {
            }
            _watched = source.ReferencedPaths;
            if (_watched.Count == 0)
            {
                try
                {
                    await _pathsChanged.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            using var restart = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var pathsChanged = _pathsChanged.Reader.WaitToReadAsync(restart.Token).AsTask().ContinueWith(_ => restart.Cancel(), TaskScheduler.Default);
            try
            {
                using var stream = call.Client.Raw.WatchSecrets(new WatchSecretsRequest { Paths = { _watched } }, cancellationToken: restart.Token);
                await stream.ResponseHeadersAsync.ConfigureAwait(false);
                if (failures > 0)
                {
                    // Events between the broken stream and this one were missed: read everything again.
                    source.Invalidate();
                    _changes.Writer.TryWrite("reconnected");
                }
                await foreach (var secretEvent in stream.ResponseStream.ReadAllAsync(restart.Token).ConfigureAwait(false))
                {
                    failures = 0;
                    source.Invalidate(secretEvent.Path);
                    _changes.Writer.TryWrite(secretEvent.Path);
                }
                failures++;
            }
            catch (Exception ex) when (restart.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                continue;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.InvalidArgument or StatusCode.NotFound)
            {
                Fail(new MaterializeException(ExitCodes.For(ex.StatusCode), CliOutput.StatusName(ex.StatusCode), $"watch: {ex.Status.Detail}"));
                return;
            }
            catch (RpcException)
            {
                failures++;
            }
            finally
            {
                await restart.CancelAsync().ConfigureAwait(false);
                await pathsChanged.ConfigureAwait(false);
            }
            try
            {
                var backoff = TimeSpan.FromMilliseconds(Math.Min(10_000, 200 << Math.Min(failures, 6)));
                await Task.Delay(backoff * (0.5 + (Random.Shared.NextDouble() / 2)), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Fail(MaterializeException failure)
    {
        _failure ??= failure;
        _changes.Writer.TryWrite("failed");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_tasks).ConfigureAwait(false);
        _stop.Dispose();
    }
}
