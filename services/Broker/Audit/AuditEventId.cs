using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// Audit event ids: UUIDv7 (RFC 9562 section 5.7: 48-bit Unix milliseconds, version 7, variant, 74 random bits). Unique and
/// unpredictable like a random UUID (the random bits come from the cryptographic generator, so nobody can pre-claim the
/// next id), but time-ordered, so the audit stores' unique index on the event id grows at its end instead of taking each
/// insert at a random leaf (over millions of events, a cache miss and a page written per event).
/// </summary>
public static class AuditEventId
{
    // Random bytes drawn for 256 ids at a time per thread: one call into the generator per 256 events, not per event.
    [ThreadStatic]
    private static byte[]? t_random;
    [ThreadStatic]
    private static int t_offset;

    public static string Next(DateTimeOffset now)
    {
        var random = t_random ??= new byte[16 * 256];
        if (t_offset == 0)
        {
            RandomNumberGenerator.Fill(random);
        }
        Span<byte> id = stackalloc byte[16];
        random.AsSpan(t_offset, 16).CopyTo(id);
        t_offset = (t_offset + 16) % random.Length;
        var milliseconds = (ulong)Math.Max(0, now.ToUnixTimeMilliseconds()) & 0xFFFF_FFFF_FFFF;
        var versionAndRandom = (ushort)(0x7000 | BinaryPrimitives.ReadUInt16BigEndian(id[6..]) & 0x0FFF);
        BinaryPrimitives.WriteUInt64BigEndian(id, milliseconds << 16 | versionAndRandom);
        id[8] = (byte)(0x80 | id[8] & 0x3F);
        return new Guid(id, bigEndian: true).ToString();
    }
}
