namespace SecretsBroker.Client.Envelope;

/// <summary>Why an envelope file was refused; see docs/envelope-format.md ("What is detected").</summary>
public enum EnvelopeError
{
    /// <summary>Not an envelope file, an unsupported version or algorithm, or a malformed header.</summary>
    Format,
    /// <summary>The file ends inside its header, inside a chunk, or before its last chunk.</summary>
    Truncated,
    /// <summary>The data key does not match the header: a wrong key, or an edited header.</summary>
    WrongKey,
    /// <summary>The caller's context is not the one the file was encrypted under.</summary>
    ContextMismatch,
    /// <summary>The file was encrypted under another key path than the caller expects.</summary>
    KeyPathMismatch,
    /// <summary>A chunk failed authentication: modified, reordered, duplicated, dropped, or from another file.</summary>
    ChunkAuthentication,
}

/// <summary>
/// An envelope file that cannot be decrypted (or a request that cannot be encrypted). Messages name what
/// failed and where (chunk numbers, key paths), never plaintext, keys or context values.
/// </summary>
public sealed class EnvelopeException(EnvelopeError error, string message, Exception? inner = null) : Exception(message, inner)
{
    public EnvelopeError Error => error;
}
