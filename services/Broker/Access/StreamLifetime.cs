using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Access;

/// <summary>
/// Keeps a stream (KeepAlive, WatchSecrets) within its caller's credential: the authentication of the opening request
/// is not good forever, so the stream's token is cancelled when the credential expires (a JWT's exp, a client
/// certificate's notAfter; dev tokens do not expire), on the broker's <see cref="TimeProvider"/>. The handler then
/// ends the call UNAUTHENTICATED through <see cref="ExpiredAsync"/> (audited), and the client reconnects with a fresh token.
/// </summary>
public sealed class StreamLifetimes(AccessGuard guard, TimeProvider time)
{
    internal const string ExpiredMessage = "the caller's credential expired during the stream; reconnect with a fresh token (leases: attach them again)";

    /// <summary>A lifetime for a stream of <paramref name="access"/>: its token fires when the call ends or the credential expires.</summary>
    public StreamLifetime Begin(AccessContext access, CancellationToken callAborted) =>
        new(access.Caller?.CredentialExpiresAt, time, callAborted);

    /// <summary>Records the end of an expired stream (action <c>authenticate</c>, UNAUTHENTICATED) and returns the error to end the call with.</summary>
    public async Task<BrokerException> ExpiredAsync(AccessContext access)
    {
        var error = new BrokerException(BrokerErrorKind.Unauthenticated, ExpiredMessage);
        await guard.RefusedAsync(access, new AuditEntry(AuditActions.Authenticate), error, CancellationToken.None).ConfigureAwait(false);
        return error;
    }
}

/// <summary>The token of one stream: cancelled when its call ends or, earlier, when its caller's credential expires.</summary>
public sealed class StreamLifetime : IDisposable
{
    // ITimer periods are limited (about 49 days); longer waits re-arm when they fire.
    private static readonly TimeSpan MaxWait = TimeSpan.FromDays(30);

    private readonly DateTimeOffset? _expiresAt;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _source;
    private readonly ITimer? _timer;
    private int _expired;

    public StreamLifetime(DateTimeOffset? expiresAt, TimeProvider time, CancellationToken callAborted)
    {
        _expiresAt = expiresAt;
        _time = time;
        _source = CancellationTokenSource.CreateLinkedTokenSource(callAborted);
        if (expiresAt is not null)
        {
            _timer = time.CreateTimer(static state => ((StreamLifetime)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Check();
        }
    }

    public CancellationToken Token => _source.Token;

    /// <summary>True once the credential's expiry ended the stream.</summary>
    public bool CredentialExpired => Volatile.Read(ref _expired) == 1;

    private void Check()
    {
        var left = _expiresAt!.Value - _time.GetUtcNow();
        if (left > TimeSpan.Zero)
        {
            try
            {
                _timer?.Change(left > MaxWait ? MaxWait : left, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The stream is over.
            }
            return;
        }
        if (Interlocked.Exchange(ref _expired, 1) == 0)
        {
            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The stream is over.
            }
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _source.Dispose();
    }
}
