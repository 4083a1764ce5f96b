namespace SecretsBroker.Broker.Crypto;

/// <summary>A broker ciphertext (or wrapped data key) and the key that made it.</summary>
public sealed record SealedResult(byte[] Ciphertext, string KeyPath, string KeyVersion)
{
    public override string ToString() => $"SealedResult {{ KeyVersion = {KeyVersion}, Bytes = {Ciphertext.Length} }}";
}

/// <summary>Decrypted bytes (a value or a data key) and the key that had encrypted them.</summary>
public sealed record OpenedResult(byte[] Plaintext, string KeyPath, string KeyVersion)
{
    public override string ToString() => $"OpenedResult {{ KeyVersion = {KeyVersion} }}";
}

/// <summary>A data key in plaintext and as a broker ciphertext.</summary>
public sealed record DataKeyResult(byte[] PlaintextKey, byte[] WrappedKey, string KeyPath, string KeyVersion)
{
    public override string ToString() => $"DataKeyResult {{ KeyVersion = {KeyVersion} }}";
}
