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

    public static VaultResult PermissionDenied() => Error(403, "permission denied");

    public static VaultResult BadRequest(string error) => Error(400, error);
}

/// <summary>Raised inside the emulator to answer with a Vault error.</summary>
public sealed class VaultErrorException(VaultResult result) : Exception("vault error " + result.Status)
{
    public VaultResult Result { get; } = result;
}
