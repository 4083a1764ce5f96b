using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace SecretsBroker.Audit.Contracts;

/// <summary>
/// A key that authenticates audit events in the stream. Brokers put the field <c>mac</c> right after each <c>event</c>
/// field of an entry (<see cref="AuditStream.MacField"/>), holding <c>v1:&lt;key id&gt;:&lt;hex HMAC-SHA256&gt;</c> over the key
/// id and the event's exact protobuf bytes. The audit service checks it with the key the id names before it
/// de-duplicates or stores anything, so writing to Redis is not enough to add an event or to claim a real one's id.
/// </summary>
public sealed class AuditEventMacKey : IDisposable
{
    /// <summary>The id of the key every broker and audit service derive from the deployment audit key (the default).</summary>
    public const string DerivedKeyId = "audit-key";

    private const string Version = "v1";
    private const int MacSize = 32;
    private static readonly SearchValues<char> IdCharacters = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    private readonly byte[] _idBytes;
    private readonly ThreadLocal<IncrementalHash> _hmac;

    public AuditEventMacKey(string id, byte[] key)
    {
        if (IdProblem(id) is { } problem)
        {
            throw new ArgumentException(problem);
        }
        if (key.Length != 32)
        {
            throw new ArgumentException($"an audit event key must be 32 bytes (base64 of 32 random bytes, e.g. `openssl rand -base64 32`); it is {key.Length}");
        }
        Id = id;
        _idBytes = Encoding.ASCII.GetBytes(id);
        var copy = key.ToArray();
        _hmac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, copy));
    }

    public string Id { get; }

    /// <summary>Why <paramref name="id"/> cannot name a key (1 to 64 of A-Z a-z 0-9 . _ -), or null.</summary>
    public static string? IdProblem(string? id) =>
        string.IsNullOrEmpty(id) || id.Length > 64 || id.AsSpan().ContainsAnyExcept(IdCharacters)
            ? "an audit event key id must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
            : null;

    /// <summary>The key derived from the deployment audit key (HKDF-SHA256, its own label), under <see cref="DerivedKeyId"/>.</summary>
    public static AuditEventMacKey FromAuditKey(string auditKeyBase64)
    {
        using var _ = AuditKey.FromBase64(auditKeyBase64); // the same checks and messages as the audit key itself
        var derived = HKDF.DeriveKey(HashAlgorithmName.SHA256, Convert.FromBase64String(auditKeyBase64), 32, info: "secretsbroker audit event mac v1"u8.ToArray());
        return new AuditEventMacKey(DerivedKeyId, derived);
    }

    /// <summary>A configured key: <paramref name="base64"/> of 32 bytes; throws <see cref="ArgumentException"/> with a clear message otherwise.</summary>
    public static AuditEventMacKey FromBase64(string id, string? base64)
    {
        if (string.IsNullOrWhiteSpace(base64))
        {
            throw new ArgumentException("the audit event key is not configured (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)");
        }
        try
        {
            return new AuditEventMacKey(id, Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            throw new ArgumentException("the audit event key is not valid base64");
        }
    }

    /// <summary>The value of the <c>mac</c> field that goes with <paramref name="eventBytes"/>.</summary>
    public string Compute(ReadOnlySpan<byte> eventBytes)
    {
        Span<byte> mac = stackalloc byte[MacSize];
        Hash(eventBytes, mac);
        return $"{Version}:{Id}:{Convert.ToHexStringLower(mac)}";
    }

    /// <summary>Whether <paramref name="mac"/> (32 bytes) is this key's MAC of <paramref name="eventBytes"/>, compared in constant time.</summary>
    public bool Matches(ReadOnlySpan<byte> eventBytes, ReadOnlySpan<byte> mac)
    {
        Span<byte> expected = stackalloc byte[MacSize];
        Hash(eventBytes, expected);
        return CryptographicOperations.FixedTimeEquals(expected, mac);
    }

    private void Hash(ReadOnlySpan<byte> eventBytes, Span<byte> destination)
    {
        // The key id is authenticated too (with a separator), so a MAC cannot be presented under another id.
        var hmac = _hmac.Value!;
        hmac.AppendData(_idBytes);
        hmac.AppendData([0]);
        hmac.AppendData(eventBytes);
        hmac.GetHashAndReset(destination);
    }

    public void Dispose() => _hmac.Dispose();
}

/// <summary>Why an event's MAC was not accepted; the names are the <c>reason</c> label of the audit service's metric.</summary>
public enum AuditEventMacFailure
{
    None,
    Missing,
    Malformed,
    UnknownKey,
    Mismatch,
}

/// <summary>The audit service's set of accepted event keys (several during a rotation), by id.</summary>
public sealed class AuditEventAuthenticator(IEnumerable<AuditEventMacKey> keys) : IDisposable
{
    private readonly Dictionary<string, AuditEventMacKey> _keys = keys.ToDictionary(k => k.Id, StringComparer.Ordinal);

    public IReadOnlyCollection<string> KeyIds => _keys.Keys;

    /// <summary>Checks the <c>mac</c> field value (<c>v1:&lt;id&gt;:&lt;64 hex&gt;</c>, or null when the event has none) against the event's bytes.</summary>
    public AuditEventMacFailure Verify(ReadOnlySpan<byte> eventBytes, string? mac)
    {
        if (string.IsNullOrEmpty(mac))
        {
            return AuditEventMacFailure.Missing;
        }
        var parts = mac.Split(':');
        Span<byte> presented = stackalloc byte[32];
        if (parts is not ["v1", var id, var hex] || hex.Length != 64 || Convert.FromHexString(hex, presented, out _, out var written) != OperationStatus.Done
            || written != 32)
        {
            return AuditEventMacFailure.Malformed;
        }
        if (!_keys.TryGetValue(id, out var key))
        {
            return AuditEventMacFailure.UnknownKey;
        }
        return key.Matches(eventBytes, presented) ? AuditEventMacFailure.None : AuditEventMacFailure.Mismatch;
    }

    public void Dispose()
    {
        foreach (var key in _keys.Values)
        {
            key.Dispose();
        }
    }
}
