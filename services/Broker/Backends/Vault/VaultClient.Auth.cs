using System.Net;
using System.Net.Http.Json;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>What auth/token/lookup-self said about a token.</summary>
internal enum TokenLookupStatus
{
    /// <summary>The token is alive; <see cref="TokenLookup.Data"/> holds its TTL and policies.</summary>
    Valid,

    /// <summary>Vault says the token is invalid: expired, revoked or unknown (403 with "invalid token", Vault 1.17+).</summary>
    Invalid,

    /// <summary>403 without "invalid token": the token may not look itself up (no default policy), or it is dead on Vault before 1.17.</summary>
    Denied,
}

internal sealed record TokenLookup(TokenLookupStatus Status, TokenLookupData? Data);

/// <summary>The broker's own token: login, renew-self, lookup-self (used by VaultTokenSource).</summary>
public sealed partial class VaultClient
{
    /// <summary>Logs in; the auth block, or null with the HTTP status when Vault refused the credentials (400, 401, 403).</summary>
    internal async Task<(VaultAuthBlock? Auth, int RefusedStatus)> LoginAsync(string mountPath, HttpContent content, CancellationToken cancellationToken)
    {
        var (status, body) = await SendRawAsync(HttpMethod.Post, $"auth/{EscapePath(mountPath)}/login", content, token: null, cancellationToken).ConfigureAwait(false);
        if (status is HttpStatusCode.BadRequest or HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            LogCallFailed(ConnectionName, "-", "login", (int)status);
            return (null, (int)status);
        }
        var auth = Read(status, body, VaultJsonContext.Default.VaultEnvelopeEmptyData, "-", "login").Auth;
        if (auth?.ClientToken is not { Length: > 0 })
        {
            BrokerException.ThrowUnavailable("vault answered the broker's login without a token");
        }
        return (auth, 0);
    }

    internal async Task<VaultAuthBlock> RenewSelfAsync(string token, CancellationToken cancellationToken)
    {
        var (status, body) = await SendRawAsync(HttpMethod.Post, "auth/token/renew-self",
            JsonContent.Create(new RenewSelfRequest(), VaultJsonContext.Default.RenewSelfRequest), token, cancellationToken).ConfigureAwait(false);
        var auth = Read(status, body, VaultJsonContext.Default.VaultEnvelopeEmptyData, "-", "token-renew").Auth;
        return auth ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault answered renew-self without auth data");
    }

    /// <summary>
    /// Looks up the token itself. lookup-self is granted by Vault's default policy (vault/policy_store.go,
    /// defaultPolicy), so a token without it is <see cref="TokenLookupStatus.Denied"/> although alive.
    /// </summary>
    internal async Task<TokenLookup> LookupSelfAsync(string token, CancellationToken cancellationToken)
    {
        var (status, body) = await SendRawAsync(HttpMethod.Get, "auth/token/lookup-self", null, token, cancellationToken).ConfigureAwait(false);
        if (status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            return new TokenLookup(VaultErrors.IsInvalidToken(body) ? TokenLookupStatus.Invalid : TokenLookupStatus.Denied, null);
        }
        var data = Read(status, body, VaultJsonContext.Default.VaultEnvelopeTokenLookupData, "-", "token-lookup").Data
            ?? throw new BrokerException(BrokerErrorKind.Unavailable, "vault answered lookup-self without data");
        return new TokenLookup(TokenLookupStatus.Valid, data);
    }
}
