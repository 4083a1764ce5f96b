using System.Buffers.Binary;
using System.IO.Hashing;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// The local durable spool for audit events that could not reach the Redis stream: an append-only file
/// of records [length u32 BE][event bytes][CRC-32 u32 BE], fsynced once per appended group, and an
/// offset file saying how far replay has delivered. A record torn by a crash fails its length or CRC
/// check and ends the readable log; the next append truncates it away. Used by one writer loop only.
/// </summary>
public sealed class AuditSpool : IDisposable
{
    private const int HeaderSize = 4;
    private const int TrailerSize = 4;

    private readonly string _offsetPath;
    private readonly FileStream _log;
    private long _replayedOffset;
    private long _validLength;
    private long _pendingRecords;

    public AuditSpool(string directory)
    {
        Directory.CreateDirectory(directory);
        _offsetPath = Path.Combine(directory, "audit.spool.offset");
        _log = new FileStream(Path.Combine(directory, "audit.spool"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 4096,
            FileOptions.None);
        _replayedOffset = File.Exists(_offsetPath) ? ReadOffset(_offsetPath) : 0;
        (_validLength, _pendingRecords) = Scan(_replayedOffset);
    }

    /// <summary>Events spooled and not yet replayed.</summary>
    public long PendingRecords => Interlocked.Read(ref _pendingRecords);

    public bool HasPending => PendingRecords > 0;

    /// <summary>Appends a group of events and fsyncs once; when this returns, every event of the group is durable.</summary>
    public void Append(IReadOnlyList<byte[]> events)
    {
        if (_log.Length != _validLength)
        {
            // Drop a torn tail left by a crash before appending after it.
            _log.SetLength(_validLength);
        }
        _log.Position = _validLength;
        Span<byte> frame = stackalloc byte[HeaderSize];
        foreach (var bytes in events)
        {
            BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)bytes.Length);
            _log.Write(frame);
            _log.Write(bytes);
            BinaryPrimitives.WriteUInt32BigEndian(frame, Crc32.HashToUInt32(bytes));
            _log.Write(frame);
        }
        _log.Flush(flushToDisk: true);
        _validLength = _log.Position;
        Interlocked.Add(ref _pendingRecords, events.Count);
    }

    /// <summary>Reads up to <paramref name="maxCount"/> spooled events from the replay position, oldest first, and the offset after them.</summary>
    public (IReadOnlyList<byte[]> Events, long EndOffset) ReadPending(int maxCount)
    {
        var events = new List<byte[]>();
        var offset = _replayedOffset;
        while (events.Count < maxCount && TryReadRecord(offset, out var bytes, out var next))
        {
            events.Add(bytes);
            offset = next;
        }
        return (events, offset);
    }

    /// <summary>Records that everything before <paramref name="endOffset"/> reached the stream; empties the spool once all has.</summary>
    public void MarkReplayed(long endOffset, int count)
    {
        if (endOffset >= _validLength)
        {
            // Everything delivered: start over with an empty file rather than growing forever.
            _log.SetLength(0);
            _log.Flush(flushToDisk: true);
            _validLength = 0;
            endOffset = 0;
        }
        var temporary = _offsetPath + ".tmp";
        var bytes = new byte[sizeof(long)];
        BinaryPrimitives.WriteInt64BigEndian(bytes, endOffset);
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, _offsetPath, overwrite: true);
        _replayedOffset = endOffset;
        Interlocked.Add(ref _pendingRecords, -count);
    }

    public void Dispose() => _log.Dispose();

    private static long ReadOffset(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return bytes.Length == sizeof(long) ? BinaryPrimitives.ReadInt64BigEndian(bytes) : 0;
    }

    private (long ValidLength, long Records) Scan(long from)
    {
        if (from > _log.Length)
        {
            from = 0;
            _replayedOffset = 0;
        }
        long records = 0;
        var offset = from;
        while (TryReadRecord(offset, out _, out var next))
        {
            records++;
            offset = next;
        }
        return (offset, records);
    }

    private bool TryReadRecord(long offset, out byte[] bytes, out long next)
    {
        bytes = [];
        next = offset;
        Span<byte> frame = stackalloc byte[HeaderSize];
        if (offset + HeaderSize > _log.Length)
        {
            return false;
        }
        _log.Position = offset;
        _log.ReadExactly(frame);
        var length = BinaryPrimitives.ReadUInt32BigEndian(frame);
        if (length > 16 * 1024 * 1024 || offset + HeaderSize + length + TrailerSize > _log.Length)
        {
            return false;
        }
        bytes = new byte[length];
        _log.ReadExactly(bytes);
        _log.ReadExactly(frame);
        if (BinaryPrimitives.ReadUInt32BigEndian(frame) != Crc32.HashToUInt32(bytes))
        {
            bytes = [];
            return false;
        }
        next = offset + HeaderSize + length + TrailerSize;
        return true;
    }
}
