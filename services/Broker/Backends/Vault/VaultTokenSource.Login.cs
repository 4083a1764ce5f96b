using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Logins (approle, kubernetes, jwt). The credential is read again at every login, so a secret_id or JWT
/// the platform replaced in its file is picked up. When Vault refuses it (an AppRole secret_id used up by
/// secret_id_num_uses or past secret_id_ttl, an expired JWT), the refusal names the credential, never its
/// value, and stays visible in readiness and the secretsbroker.vault.credential.refused metric until a login succeeds.
/// </summary>
public sealed partial class VaultTokenSource
{
    /// <summary>
    /// For readiness: null while the broker holds a token Vault accepted at its last login, renew-self or lookup-self;
    /// else why not (never the token). A connection with no token yet, or whose last attempt failed, tries again
    /// first, so readiness proves the credentials work without waiting for a read, and recovers by itself.
    /// </summary>
    public async Task<string?> ReadinessProblemAsync(CancellationToken cancellationToken)
    {
        if (_state is not null && _failure is null && _refusal is null)
        {
            return null;
        }
        try
        {
            await RefreshAsync(null, forceLogin: false, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            // Recorded in _failure by RefreshAsync.
        }
        return _failure;
    }

    private async Task LoginAsync(CancellationToken cancellationToken)
    {
        var credential = _auth.Method == "approle" ? ReadSecret(_auth.SecretId, _auth.SecretIdFile) : ReadSecret(_auth.Jwt, _auth.JwtFile);
        var fingerprint = SHA256.HashData(Encoding.UTF8.GetBytes(credential));
        if (_refusal is { } refused && _refusedFingerprint is { } refusedFingerprint && CryptographicOperations.FixedTimeEquals(fingerprint, refusedFingerprint)
            && _time.GetUtcNow() < refused.Since + RefusedCredentialRetry)
        {
            // The same credential was refused moments ago and the platform has not replaced it yet.
            throw new BrokerException(BrokerErrorKind.Unavailable, RefusedMessage());
        }
        HttpContent content = _auth.Method switch
        {
            "approle" => JsonContent.Create(new AppRoleLoginRequest { RoleId = _auth.RoleId!, SecretId = credential }, VaultJsonContext.Default.AppRoleLoginRequest),
            _ => JsonContent.Create(new JwtLoginRequest { Role = _auth.Role!, Jwt = credential }, VaultJsonContext.Default.JwtLoginRequest),
        };
        VaultAuthBlock? auth;
        int refusedStatus;
        try
        {
            (auth, refusedStatus) = await _client.LoginAsync(_auth.EffectiveMountPath, content, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException)
        {
            _metrics.Login(_client.ConnectionName, _auth.Method, "failed");
            throw;
        }
        if (auth is null)
        {
            _refusedFingerprint = fingerprint;
            _refusal = new Refusal(CredentialDescription(), _time.GetUtcNow(), refusedStatus);
            _metrics.Login(_client.ConnectionName, _auth.Method, "refused");
            LogLoginRefused(_client.ConnectionName, _auth.Method, refusedStatus, CredentialDescription());
            throw new BrokerException(BrokerErrorKind.Unavailable, RefusedMessage());
        }
        if (_refusal is not null)
        {
            LogLoginAcceptedAgain(_client.ConnectionName, _auth.Method);
            _refusal = null;
            _refusedFingerprint = null;
        }
        _metrics.Login(_client.ConnectionName, _auth.Method, "ok");
        Interlocked.Increment(ref _logins);
        var ttl = TimeSpan.FromSeconds(auth.LeaseDuration);
        var expires = auth.LeaseDuration > 0 ? _time.GetUtcNow() + ttl : (DateTimeOffset?)null;
        // lookup-self is granted by Vault's default policy; a token without it (token_no_default_policy) is never looked up.
        var canLookupSelf = auth.Policies is { } policies && (policies.Contains("default") || policies.Contains("root"));
        SetState(new TokenState(auth.ClientToken!, expires, expires is null ? null : RenewAtFor(ttl), auth.Renewable, ttl, canLookupSelf), schedule: true);
        LogLoggedIn(_client.ConnectionName, _auth.Method, auth.LeaseDuration);
    }

    /// <summary>Which credential a refused login used, for logs, errors and readiness: the setting, never the value.</summary>
    private string CredentialDescription() => _auth.Method switch
    {
        "approle" when !string.IsNullOrEmpty(_auth.SecretIdFile) => "the AppRole secret_id from Auth:SecretIdFile (with Auth:RoleId)",
        "approle" => "the AppRole secret_id in Auth:SecretId (with Auth:RoleId)",
        "kubernetes" => "the service account token from Auth:JwtFile",
        _ when !string.IsNullOrEmpty(_auth.JwtFile) => "the JWT from Auth:JwtFile",
        _ => "the JWT in Auth:Jwt",
    };

    private string RefusedMessage() =>
        $"vault refused the broker's {_auth.Method} login: {CredentialDescription()} was not accepted (used up, expired, revoked or wrong); it is read again at the next login";

    [LoggerMessage(Level = LogLevel.Information, Message = "Vault connection {Connection}: logged in with {Method}, token TTL {TtlSeconds}s")]
    private partial void LogLoggedIn(string connection, string method, long ttlSeconds);

    [LoggerMessage(Level = LogLevel.Error,
        Message = "Vault connection {Connection}: {Method} login refused (HTTP {Status}): {Credential} was not accepted; it may be used up, expired or revoked. Provide a new one; it is read again at each login")]
    private partial void LogLoginRefused(string connection, string method, int status, string credential);

    [LoggerMessage(Level = LogLevel.Information, Message = "Vault connection {Connection}: {Method} login accepted again")]
    private partial void LogLoginAcceptedAgain(string connection, string method);
}
