using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// The broker's own Vault token for one connection. Static tokens are looked up once (TTL, renewable)
/// and renewed; login methods (approle, kubernetes, jwt) log in on first use, renew the token at
/// <see cref="VaultAuthOptions.RenewAtFraction"/> of its TTL, and log in again when renewal is refused
/// or capped by the token's max TTL. The old token stays in use until the new one is in place and is
/// still valid then, so no request fails during the switch. Token health is judged from the token's own
/// TTL, Vault's "invalid token" answers and renew/login results; lookup-self is only used when the token
/// may call it (tokens without Vault's default policy may not).
/// </summary>
public sealed partial class VaultTokenSource : IDisposable
{
    /// <summary>A token closer than this to its expiry is not handed out any more.</summary>
    private static readonly TimeSpan ExpirySafety = TimeSpan.FromMilliseconds(500);

    /// <summary>A credential Vault refused is sent again after this long at the earliest, unless its file changed.</summary>
    private static readonly TimeSpan RefusedCredentialRetry = TimeSpan.FromSeconds(30);

    private readonly VaultClient _client;
    private readonly VaultAuthOptions _auth;
    private readonly TimeProvider _time;
    private readonly VaultMetrics _metrics;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private volatile TokenState? _state;
    private volatile Refusal? _refusal;
    private volatile string? _failure; // why the last attempt to get or keep a token failed; null once one works (readiness)
    private volatile byte[]? _refusedFingerprint; // SHA-256 of the refused credential, in memory only, to notice a replaced file
    private ITimer? _timer;
    private int _backgroundRefreshRunning;
    private int _logins;
    private int _renewals;
    private volatile bool _disposed;

    internal VaultTokenSource(VaultClient client, VaultAuthOptions auth, TimeProvider time, VaultMetrics metrics, ILogger<VaultTokenSource> logger)
    {
        _client = client;
        _auth = auth;
        _time = time;
        _metrics = metrics;
        _logger = logger;
    }

    private sealed record TokenState(string Token, DateTimeOffset? ExpiresAt, DateTimeOffset? RenewAt, bool Renewable, TimeSpan GrantedTtl, bool CanLookupSelf);

    /// <summary>Vault refused the login credential: which one (the setting, never the value), since when, with which HTTP status.</summary>
    public sealed record Refusal(string Credential, DateTimeOffset Since, int Status);

    /// <summary>How many logins this connection made (for tests and diagnostics).</summary>
    public int LoginCount => Volatile.Read(ref _logins);

    /// <summary>How many successful renew-self calls this connection made.</summary>
    public int RenewalCount => Volatile.Read(ref _renewals);

    /// <summary>The auth method of this connection.</summary>
    public string Method => _auth.Method;

    /// <summary>Set while Vault refuses this connection's login credential; readiness and metrics report it.</summary>
    public Refusal? LoginRefusal => _refusal;

    private bool CanLogin => _auth.Method != "token";

    public async ValueTask<string> GetTokenAsync(CancellationToken cancellationToken)
    {
        var state = _state;
        if (state is not null && IsUsable(state, _time.GetUtcNow()))
        {
            if (state.RenewAt is { } renewAt && _time.GetUtcNow() >= renewAt)
            {
                StartBackgroundRefresh();
            }
            return state.Token;
        }
        await RefreshAsync(state?.Token, forceLogin: false, cancellationToken).ConfigureAwait(false);
        return _state!.Token;
    }

    /// <summary>
    /// Called after Vault answered 403 to a request made with <paramref name="token"/>. Returns true when
    /// the token itself was dead and has been replaced (the request is worth one retry), false when the
    /// denial was a policy decision. A token is dead when Vault says "invalid token", when its own TTL has
    /// run out, or, for a token that may look itself up, when lookup-self is refused too. A token that may
    /// not look itself up is never looked up: a denial with it stays a denial.
    /// </summary>
    public async Task<bool> RecoverFromDeniedAsync(string token, bool vaultSaysInvalid, CancellationToken cancellationToken)
    {
        var state = _state;
        if (state is not null && state.Token != token)
        {
            return true; // another caller already replaced the token
        }
        var dead = vaultSaysInvalid || (state?.ExpiresAt is { } expires && _time.GetUtcNow() >= expires);
        if (!dead && state is { CanLookupSelf: true })
        {
            dead = (await _client.LookupSelfAsync(token, cancellationToken).ConfigureAwait(false)).Status != TokenLookupStatus.Valid;
        }
        if (!dead)
        {
            return false;
        }
        LogTokenInvalid(_client.ConnectionName);
        if (!CanLogin)
        {
            // A configured token cannot be replaced: this is the broker's problem, not the caller's. Forget it, so the
            // next use looks it up again (and reads Auth:TokenFile again, which the operator may have replaced).
            const string message = "vault no longer accepts the broker's configured token";
            _failure = message;
            _state = null;
            throw new BrokerException(BrokerErrorKind.Unavailable, message);
        }
        await RefreshAsync(token, forceLogin: true, cancellationToken).ConfigureAwait(false);
        return true;
    }

    public void Dispose()
    {
        _disposed = true;
        _stopping.Cancel();
        _timer?.Dispose();
        _stopping.Dispose();
        _gate.Dispose();
    }

    private static bool IsUsable(TokenState state, DateTimeOffset now) => state.ExpiresAt is not { } expires || now < expires - ExpirySafety;

    private void StartBackgroundRefresh()
    {
        if (Interlocked.CompareExchange(ref _backgroundRefreshRunning, 1, 0) != 0)
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                if (!_disposed)
                {
                    await RefreshAsync(null, forceLogin: false, _stopping.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException && _disposed)
            {
                // The connection was disposed while a refresh was due.
            }
            catch (BrokerException ex)
            {
                // Vault is down or refuses the login: keep the current token while it lasts and try again soon.
                LogBackgroundRefreshFailed(_client.ConnectionName, ex.Kind.ToString());
                Schedule(TimeSpan.FromSeconds(1));
            }
            finally
            {
                Volatile.Write(ref _backgroundRefreshRunning, 0);
            }
        });
    }

    private void Schedule(TimeSpan delay)
    {
        if (_disposed)
        {
            return;
        }
        var timer = _time.CreateTimer(_ => StartBackgroundRefresh(), null, delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
        Interlocked.Exchange(ref _timer, timer)?.Dispose();
    }

    private async Task RefreshAsync(string? staleToken, bool forceLogin, CancellationToken cancellationToken)
    {
        try
        {
            await RefreshCoreAsync(staleToken, forceLogin, cancellationToken).ConfigureAwait(false);
            _failure = null;
        }
        catch (BrokerException ex)
        {
            _failure = ex.Message;
            throw;
        }
    }

    private async Task RefreshCoreAsync(string? staleToken, bool forceLogin, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var state = _state;
            var now = _time.GetUtcNow();
            if (state is not null && staleToken is not null && state.Token != staleToken)
            {
                return; // another caller already replaced the token
            }
            if (state is not null && staleToken is null && !forceLogin && (state.RenewAt is not { } due || now < due) && IsUsable(state, now))
            {
                return; // nothing due yet
            }
            if (state is not null && !forceLogin && state.Renewable && IsUsable(state, now))
            {
                if (await TryRenewAsync(state, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
            if (CanLogin)
            {
                await LoginAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            await LoadStaticTokenAsync(state, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>renew-self; false when the renewal was refused or capped so a new login should follow.</summary>
    private async Task<bool> TryRenewAsync(TokenState state, CancellationToken cancellationToken)
    {
        VaultAuthBlock renewed;
        try
        {
            renewed = await _client.RenewSelfAsync(state.Token, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex) when (ex.Kind is BrokerErrorKind.PermissionDenied or BrokerErrorKind.FailedPrecondition or BrokerErrorKind.InvalidArgument
            or BrokerErrorKind.NotFound)
        {
            // Refused, or not permitted (renew-self comes with the default policy too): keep the token until a new login,
            // unless lookup-self says Vault no longer accepts it at all.
            LogRenewRefused(_client.ConnectionName, ex.Kind.ToString());
            if (ex.Kind is BrokerErrorKind.PermissionDenied && state.CanLookupSelf
                && (await _client.LookupSelfAsync(state.Token, cancellationToken).ConfigureAwait(false)).Status == TokenLookupStatus.Invalid)
            {
                LogTokenInvalid(_client.ConnectionName);
                if (!CanLogin)
                {
                    _state = null;
                    throw new BrokerException(BrokerErrorKind.Unavailable, "vault refused to renew the broker's configured token: lookup-self says it is no longer valid");
                }
                return false;
            }
            return !CanLogin && KeepUntilExpiry(state);
        }
        Interlocked.Increment(ref _renewals);
        var ttl = TimeSpan.FromSeconds(renewed.LeaseDuration);
        var capped = ttl + TimeSpan.FromSeconds(1) < state.GrantedTtl;
        if (capped && CanLogin)
        {
            // The token nears its max TTL: log in again while the old token is still good.
            LogRenewCapped(_client.ConnectionName, (long)ttl.TotalSeconds);
            SetState(state with { ExpiresAt = _time.GetUtcNow() + ttl, RenewAt = null }, schedule: false);
            return false;
        }
        SetState(state with { ExpiresAt = _time.GetUtcNow() + ttl, RenewAt = RenewAtFor(ttl), Renewable = renewed.Renewable, GrantedTtl = capped ? state.GrantedTtl : ttl },
            schedule: true);
        LogRenewed(_client.ConnectionName, (long)ttl.TotalSeconds);
        return true;
    }

    private bool KeepUntilExpiry(TokenState state)
    {
        SetState(state with { Renewable = false, RenewAt = null }, schedule: false);
        return true;
    }

    private async Task LoadStaticTokenAsync(TokenState? state, CancellationToken cancellationToken)
    {
        var token = state?.Token ?? ReadSecret(_auth.Token, _auth.TokenFile);
        if (state is not null && !IsUsable(state, _time.GetUtcNow()))
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "the broker's configured Vault token has expired");
        }
        var lookup = await _client.LookupSelfAsync(token, cancellationToken).ConfigureAwait(false);
        switch (lookup.Status)
        {
            case TokenLookupStatus.Invalid:
                throw new BrokerException(BrokerErrorKind.Unavailable, "vault does not accept the broker's configured token");
            case TokenLookupStatus.Denied:
                // A token without the default policy may not look itself up: its TTL is unknown, so it is used as it is and not renewed.
                LogStaticTokenCannotLookUp(_client.ConnectionName);
                SetState(new TokenState(token, null, null, false, TimeSpan.Zero, CanLookupSelf: false), schedule: false);
                return;
        }
        var data = lookup.Data!;
        var ttl = TimeSpan.FromSeconds(data.Ttl);
        var expires = data.Ttl > 0 ? _time.GetUtcNow() + ttl : (DateTimeOffset?)null;
        SetState(new TokenState(token, expires, expires is null || !data.Renewable ? null : RenewAtFor(ttl), data.Renewable, ttl, CanLookupSelf: true), schedule: true);
    }

    private DateTimeOffset RenewAtFor(TimeSpan ttl) => _time.GetUtcNow() + ttl * _auth.RenewAtFraction;

    private void SetState(TokenState state, bool schedule)
    {
        _state = state;
        if (schedule && state.RenewAt is { } due)
        {
            Schedule(due - _time.GetUtcNow());
        }
    }

    private static string ReadSecret(string? inline, string? file)
    {
        if (!string.IsNullOrEmpty(inline))
        {
            return inline;
        }
        try
        {
            return File.ReadAllText(file!).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable, "the broker cannot read its Vault credential file", ex);
        }
    }



    [LoggerMessage(Level = LogLevel.Debug, Message = "Vault connection {Connection}: token renewed, TTL {TtlSeconds}s")]
    private partial void LogRenewed(string connection, long ttlSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Vault connection {Connection}: token renewal capped at {TtlSeconds}s by its max TTL; logging in again")]
    private partial void LogRenewCapped(string connection, long ttlSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}: token renewal refused ({Status})")]
    private partial void LogRenewRefused(string connection, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}: the broker's token is no longer valid")]
    private partial void LogTokenInvalid(string connection);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Vault connection {Connection}: the configured token may not look itself up (no default policy?); it is used as it is, without renewal")]
    private partial void LogStaticTokenCannotLookUp(string connection);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vault connection {Connection}: background token refresh failed ({Status}); retrying shortly")]
    private partial void LogBackgroundRefreshFailed(string connection, string status);
}
