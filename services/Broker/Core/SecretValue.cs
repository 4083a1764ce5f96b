namespace SecretsBroker.Broker.Core;

/// <summary>Which version of a secret to read. Both null means the latest (current) version.</summary>
public sealed record VersionSelector(string? Version = null, string? Stage = null)
{
    public static readonly VersionSelector Latest = new();

    public bool IsLatest => Version is null && Stage is null;
}

/// <summary>One version of a secret as a backend returned it.</summary>
public sealed class SecretValue
{
    public required string Version { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Fields of a key/value secret; null for a binary secret.</summary>
    public IReadOnlyDictionary<string, string>? Data { get; init; }

    /// <summary>Bytes of a binary secret; null for a key/value secret.</summary>
    public byte[]? Binary { get; init; }

    public IReadOnlyList<string> Stages { get; init; } = [];
}

/// <summary>A secret's name and metadata without its value, as listings return it.</summary>
public sealed record SecretListingEntry(string Name, string? LatestVersion = null, DateTimeOffset? UpdatedAt = null);

/// <summary>One page of a listing; <see cref="Continuation"/> is the backend's own cursor, null on the last page.</summary>
public sealed record SecretListingPage(IReadOnlyList<SecretListingEntry> Entries, string? Continuation);

/// <summary>The outcome for one name of a batch read: a value or the error that stopped it.</summary>
public sealed record SecretReadResult(SecretValue? Value, BrokerException? Error)
{
    public static SecretReadResult Success(SecretValue value) => new(value, null);

    public static SecretReadResult Failure(BrokerException error) => new(null, error);
}
