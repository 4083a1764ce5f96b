using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

/// <summary>What one emulated Vault call answers: a status code and an optional JSON body.</summary>
public sealed record VaultResult(int Status, JsonObject? Body, IReadOnlyDictionary<string, string>? Headers = null)
{
    public static VaultResult NoContent { get; } = new(204, null);

    /// <summary>Vault's error body: <c>{"errors":[...]}</c>.</summary>
    public static VaultResult Error(int status, params string[] errors)
    {
        var array = new JsonArray();
        foreach (var error in errors)
        {
            array.Add(error);
        }
        return new VaultResult(status, new JsonObject { ["errors"] = array });
    }

    /// <summary>A login or backend refusal: logical.ErrPermissionDenied on its own.</summary>
    public static VaultResult PermissionDenied() => Error(403, "permission denied");

    /// <summary>An ACL denial for a valid token: checkToken appends ErrPermissionDenied to a go-multierror (vault/request_handling.go).</summary>
    public static VaultResult PolicyDenied() => Error(403, "1 error occurred:\n\t* permission denied\n\n");

    /// <summary>A missing, expired or revoked token (Vault 1.17+, hashicorp/vault#25953: "invalid token" next to "permission denied").</summary>
    public static VaultResult InvalidToken() => Error(403, "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n");

    public static VaultResult BadRequest(string error) => Error(400, error);
}

/// <summary>Raised inside the emulator to answer with a Vault error.</summary>
public sealed class VaultErrorException(VaultResult result) : Exception("vault error " + result.Status)
{
    public VaultResult Result { get; } = result;
}
