namespace SecretsBroker.Broker.Policy;

/// <summary>What a rule grants or denies on the paths it matches.</summary>
[Flags]
public enum Capability
{
    None = 0,
    Read = 1,
    List = 2,
    Issue = 4,
    Renew = 8,
    Revoke = 16,
    Watch = 32,
    /// <summary>PutSecret: write a new version of a static secret.</summary>
    Write = 64,
    /// <summary>RotateSecret: run the path's rotation strategy.</summary>
    Rotate = 128,
    /// <summary>Crypto Encrypt (and the encrypting half of Rewrap) under a key path.</summary>
    Encrypt = 256,
    /// <summary>Crypto Decrypt (and the decrypting half of Rewrap) under a key path.</summary>
    Decrypt = 512,
    /// <summary>Crypto GenerateDataKey and DecryptDataKey under a key path.</summary>
    DataKey = 1024,
}
