using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Grpc.Core;
using SecretsBroker.V1;
using V1Client = SecretsBroker.V1.SecretsBroker.SecretsBrokerClient;

namespace SecretsBroker.Client;

/// <summary>Settings of a <see cref="LeaseKeeper"/>.</summary>
public sealed class LeaseKeeperOptions
{
    /// <summary>First delay before reconnecting after the stream broke; doubles up to <see cref="MaxBackoff"/>, with jitter.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Keeps one lease of dynamic credentials alive over a KeepAlive stream: <see cref="Current"/> always holds
/// the latest credentials (a rotation replaces them), <see cref="ChangesAsync"/> yields every lease event,
/// and a broken stream is reopened with exponential backoff and the lease attached again (any broker
/// replica can take it over within the broker's grace period). If the lease expires or is revoked, the
/// keeper issues fresh credentials for the same role. A stream the broker ends UNAUTHENTICATED (the caller's
/// token expired) is reopened with a fresh token (the token file is read again) and the same lease attached again.
/// A lease the caller may not keep alive (no <c>renew</c> at attach, or the grant removed later) is <see cref="Lost"/>.
/// </summary>
public sealed class LeaseKeeper : IAsyncDisposable
{
    private readonly V1Client _client;
    private readonly BearerTokenSource? _tokens;
    private readonly TaskCompletionSource _firstAttach = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _rolePath;
    private readonly LeaseKeeperOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<Channel<LeaseEvent>> _listeners = [];
    private Lease _current;
    private Task? _loop;

    private LeaseKeeper(V1Client client, BearerTokenSource? tokens, string rolePath, Lease lease, LeaseKeeperOptions options)
    {
        _client = client;
        _tokens = tokens;
        _rolePath = rolePath;
        _current = lease;
        _options = options;
    }

    /// <summary>The lease and credentials to use now.</summary>
    public Lease Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>How many times the keeper (re)opened its KeepAlive stream.</summary>
    public int Connections { get; private set; }

    /// <summary>How many times the broker ended the stream UNAUTHENTICATED (an expired token) and the keeper reconnected with a fresh one.</summary>
    public int Reauthentications { get; private set; }

    /// <summary>
    /// True once the broker stopped keeping the lease alive for this caller (PERMISSION_DENIED: the policy no longer grants
    /// <c>renew</c> or <c>issue</c> on the role): <see cref="Current"/> then lasts only until its <c>expires_at</c>.
    /// </summary>
    public bool Lost { get; private set; }

    /// <summary>
    /// Issues credentials for <paramref name="rolePath"/> and starts keeping the lease alive; returns once the broker
    /// attached it. A refused attach (for example PERMISSION_DENIED without <c>renew</c>) fails here, with its status.
    /// </summary>
    public static async Task<LeaseKeeper> StartAsync(BrokerClient client, string rolePath, LeaseKeeperOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var lease = await client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = rolePath }, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        var keeper = new LeaseKeeper(client.Raw, client.Tokens, rolePath, lease, options ?? new LeaseKeeperOptions());
        keeper._loop = keeper.RunAsync(keeper._stop.Token);
        try
        {
            await keeper._firstAttach.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await keeper.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return keeper;
    }

    /// <summary>Every lease event from now on (RENEWED, ROTATED, ...), until the keeper is disposed or <paramref name="cancellationToken"/> fires.</summary>
    public async IAsyncEnumerable<LeaseEvent> ChangesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<LeaseEvent>();
        lock (_gate)
        {
            _listeners.Add(channel);
        }
        try
        {
            await foreach (var leaseEvent in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return leaseEvent;
            }
        }
        finally
        {
            lock (_gate)
            {
                _listeners.Remove(channel);
            }
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var call = _client.KeepAlive(cancellationToken: cancellationToken);
                Connections++;
                await call.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { Current.LeaseId } }, cancellationToken).ConfigureAwait(false);
                while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    failures = 0;
                    var leaseEvent = call.ResponseStream.Current;
                    if (await HandleAsync(leaseEvent, cancellationToken).ConfigureAwait(false) is { } attach)
                    {
                        await call.RequestStream.WriteAsync(new KeepAliveRequest { AttachLeaseIds = { attach } }, cancellationToken).ConfigureAwait(false);
                    }
                    Publish(leaseEvent);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
            {
                // The token expired (the broker ends streams at the credential's expiry): read the token file again
                // and reconnect; the lease waits on the broker for its grace period and is attached again.
                _tokens?.Refresh();
                Reauthentications++;
            }
            catch (RpcException)
            {
                // The stream broke (broker restart, network, another replica): reconnect and attach again.
            }
            failures++;
            var backoff = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, _options.InitialBackoff.Ticks << Math.Min(failures - 1, 16)));
            try
            {
                await Task.Delay(backoff * (0.5 + (Random.Shared.NextDouble() / 2)), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Applies an event; returns a lease id to attach when the keeper had to issue fresh credentials.</summary>
    private async Task<string?> HandleAsync(LeaseEvent leaseEvent, CancellationToken cancellationToken)
    {
        if (leaseEvent.LeaseId == Current.LeaseId)
        {
            if (leaseEvent.Type == LeaseEventType.Attached)
            {
                _firstAttach.TrySetResult();
            }
            else if (leaseEvent.Type == LeaseEventType.Error && leaseEvent.Error.Code == (int)StatusCode.PermissionDenied)
            {
                // Refused at attach, or the grant was removed later: the broker no longer keeps this lease alive.
                Lost = true;
                _firstAttach.TrySetException(new RpcException(new Status(StatusCode.PermissionDenied, leaseEvent.Error.Message)));
                return null;
            }
        }
        switch (leaseEvent.Type)
        {
            case LeaseEventType.Rotated when leaseEvent.LeaseId == Current.LeaseId:
                lock (_gate)
                {
                    _current = leaseEvent.RotatedTo;
                }
                return null;
            case LeaseEventType.Renewed or LeaseEventType.Attached when leaseEvent.LeaseId == Current.LeaseId:
                lock (_gate)
                {
                    _current = _current.Clone();
                    _current.ExpiresAt = leaseEvent.ExpiresAt;
                }
                return null;
            case LeaseEventType.Expired or LeaseEventType.Revoked when leaseEvent.LeaseId == Current.LeaseId:
            case LeaseEventType.Error when leaseEvent.LeaseId == Current.LeaseId && leaseEvent.Error.Code == (int)StatusCode.NotFound:
                var fresh = await _client.IssueCredentialsAsync(new IssueCredentialsRequest { Path = _rolePath }, cancellationToken: cancellationToken)
                    .ConfigureAwait(false);
                lock (_gate)
                {
                    _current = fresh;
                }
                return fresh.LeaseId;
            default:
                return null;
        }
    }

    private void Publish(LeaseEvent leaseEvent)
    {
        lock (_gate)
        {
            foreach (var listener in _listeners)
            {
                listener.Writer.TryWrite(leaseEvent);
            }
        }
    }

    /// <summary>Stops keeping the lease alive (the broker revokes it after its grace period unless it is attached elsewhere).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        lock (_gate)
        {
            foreach (var listener in _listeners)
            {
                listener.Writer.TryComplete();
            }
        }
        _stop.Dispose();
    }
}
