using Microsoft.IdentityModel.Tokens;

namespace SecretsBroker.Broker.Auth;

/// <summary>Caller-facing reasons for failed authentication: specific enough to fix, never quoting the credential.</summary>
public static class AuthenticationFailures
{
    public const string NoSubject = "the token has no subject: a non-empty 'sub' claim is required";

    public static string Describe(Exception? failure) => failure switch
    {
        null => "no credentials: send 'authorization: Bearer <token>' metadata or a client certificate",
        SecurityTokenExpiredException => "the token has expired",
        SecurityTokenNotYetValidException => "the token is not valid yet",
        SecurityTokenInvalidIssuerException => "the token's issuer is not trusted",
        SecurityTokenInvalidAudienceException => "the token's audience is not this broker",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
        SecurityTokenNoExpirationException => "the token has no expiry",
        SecurityTokenException or ArgumentException => "the token is not valid",
        _ => failure.Message,
    };
}
