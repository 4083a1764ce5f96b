namespace SecretsBroker.Client;

/// <summary>
/// Supplies the bearer token for each call: a fixed token, or a file re-read when its timestamp
/// changes (Kubernetes rotates projected service-account tokens in place).
/// </summary>
public sealed class BearerTokenSource
{
    private readonly string? _token;
    private readonly string? _tokenFile;
    private readonly Lock _lock = new();
    private (DateTime WrittenAt, string Token)? _fileToken;

    public BearerTokenSource(string? token, string? tokenFile)
    {
        if (token is not null && tokenFile is not null)
        {
            throw new ArgumentException("set either a token or a token file, not both");
        }
        _token = token;
        _tokenFile = tokenFile;
    }

    public bool HasToken => _token is not null || _tokenFile is not null;

    /// <summary>
    /// Forgets the token read from the file, so the next <see cref="GetToken"/> reads the file again whatever its
    /// timestamp says (called when the broker answered UNAUTHENTICATED: the token expired, a fresh one may be there).
    /// </summary>
    public void Refresh()
    {
        lock (_lock)
        {
            _fileToken = null;
        }
    }

    /// <summary>The current token, or null when none is configured.</summary>
    public string? GetToken()
    {
        if (_tokenFile is null)
        {
            return _token;
        }
        var writtenAt = File.GetLastWriteTimeUtc(_tokenFile);
        lock (_lock)
        {
            if (_fileToken is not { } cached || cached.WrittenAt != writtenAt)
            {
                _fileToken = (writtenAt, File.ReadAllText(_tokenFile).Trim());
            }
            return _fileToken.Value.Token;
        }
    }
}
