using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>
/// Verifies RS256/ES256 JWTs against PEM public keys, as Vault's jwt auth (jwt_validation_pubkeys) and
/// kubernetes auth (pem_keys) do. Returns the claims, or null when the token is malformed, badly
/// signed or outside its validity window.
/// </summary>
public static class JwtVerifier
{
    public static JsonObject? Verify(string jwt, IReadOnlyList<string> pemKeys, DateTimeOffset now)
    {
        var parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            return null;
        }
        JsonObject header;
        JsonObject claims;
        byte[] signature;
        try
        {
            header = JsonNode.Parse(Base64Url(parts[0]))!.AsObject();
            claims = JsonNode.Parse(Base64Url(parts[1]))!.AsObject();
            signature = Base64Url(parts[2]);
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        var alg = header["alg"]?.GetValue<string>();
        var verified = false;
        foreach (var pem in pemKeys)
        {
            verified |= alg switch
            {
                "RS256" => VerifyRsa(pem, signed, signature),
                "ES256" => VerifyEcdsa(pem, signed, signature),
                _ => false,
            };
        }
        if (!verified)
        {
            return null;
        }
        var unixNow = now.ToUnixTimeSeconds();
        if (claims["exp"] is JsonValue exp && exp.GetValue<long>() + 60 < unixNow)
        {
            return null;
        }
        if (claims["nbf"] is JsonValue nbf && nbf.GetValue<long>() - 60 > unixNow)
        {
            return null;
        }
        return claims;
    }

    private static bool VerifyRsa(string pem, byte[] data, byte[] signature)
    {
        using var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
        }
        catch (ArgumentException)
        {
            return false;
        }
        return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }

    private static bool VerifyEcdsa(string pem, byte[] data, byte[] signature)
    {
        using var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
        }
        catch (ArgumentException)
        {
            return false;
        }
        return ecdsa.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    private static byte[] Base64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s += (s.Length % 4) switch { 2 => "==", 3 => "=", _ => "" };
        return Convert.FromBase64String(s);
    }
}
