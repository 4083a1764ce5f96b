using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Broker.Audit;

/// <summary>
/// Where audit events go when no Redis is configured and <c>Broker:Audit:LocalFile</c> is set (the Development
/// default): one JSON line per event (proto3 JSON of <see cref="AuditEvent"/>, the path sealed as in the stream,
/// never a value or token), so the quick start's decisions can be read back with <c>tail</c> and <c>jq</c>.
/// Bounded: when a group would take the file past <c>LocalFileMaxBytes</c>, the file becomes <c>&lt;file&gt;.1</c>,
/// replacing the previous <c>.1</c>, whose events are dropped (logged, and counted as
/// <c>secretsbroker_audit_events_total{outcome="dropped"}</c>): at most twice the cap is ever kept.
/// Called by the audit recorder's one writer loop only.
/// </summary>
public sealed partial class LocalFileAuditStream : IAuditStream, IDisposable
{
    private readonly string _previousPath;
    private readonly AuditMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private FileStream? _file;
    private long _eventsInFile;
    private long _eventsInPrevious;

    public LocalFileAuditStream(IOptions<AuditOptions> options, IHostEnvironment environment, AuditMetrics metrics, ILogger<LocalFileAuditStream> logger)
    {
        Path = System.IO.Path.GetFullPath(System.IO.Path.Combine(environment.ContentRootPath, options.Value.LocalFile!));
        MaxBytes = options.Value.LocalFileMaxBytes;
        _previousPath = Path + ".1";
        _metrics = metrics;
        _logger = logger;
        _eventsInFile = CountLines(Path);
        _eventsInPrevious = CountLines(_previousPath);
        LogUsing(Path, MaxBytes);
    }

    /// <summary>Whether this sink replaces the Redis stream: a local file is configured and no Redis is.</summary>
    public static bool IsSelected(IServiceProvider services) =>
        services.GetRequiredService<IOptions<AuditOptions>>().Value.LocalFile is { Length: > 0 } && services.GetService<Redis.RedisConnection>() is null;

    public bool IsConfigured => true;

    /// <summary>The full path of the current file.</summary>
    public string Path { get; }

    public long MaxBytes { get; }

    public Task<int> AppendAsync(IReadOnlyList<byte[]> events, CancellationToken cancellationToken)
    {
        var lines = Encode(events);
        lock (_gate)
        {
            try
            {
                var file = _file ??= Open();
                if (file.Length > 0 && file.Length + lines.Length > MaxBytes)
                {
                    Rotate();
                    file = _file = Open();
                }
                file.Write(lines);
                file.Flush();
                _eventsInFile += events.Count;
                return Task.FromResult(events.Count);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Nothing was taken: the recorder spools the events, as for an unreachable Redis.
                LogWriteFailed(ex.GetType().Name);
                _file?.Dispose();
                _file = null;
                return Task.FromResult(0);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = null;
        }
    }

    private FileStream Open()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        return new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    private void Rotate()
    {
        _file?.Dispose();
        _file = null;
        File.Move(Path, _previousPath, overwrite: true);
        var dropped = _eventsInPrevious;
        _eventsInPrevious = _eventsInFile;
        _eventsInFile = 0;
        if (dropped > 0)
        {
            _metrics.Dropped(dropped);
            LogDropped(dropped, MaxBytes);
        }
    }

    private static byte[] Encode(IReadOnlyList<byte[]> events)
    {
        var text = new StringBuilder();
        foreach (var bytes in events)
        {
            text.Append(JsonFormatter.Default.Format(AuditEvent.Parser.ParseFrom(bytes))).Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static long CountLines(string path)
    {
        if (!File.Exists(path))
        {
            return 0;
        }
        long lines = 0;
        foreach (var b in File.ReadAllBytes(path))
        {
            lines += b == (byte)'\n' ? 1 : 0;
        }
        return lines;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "No Redis is configured: audit events go to the local file {Path} (JSON lines, at most {MaxBytes} bytes, then the oldest are dropped)")]
    private partial void LogUsing(string path, long maxBytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The local audit file reached its cap of {MaxBytes} bytes: its {Count} oldest events were dropped")]
    private partial void LogDropped(long count, long maxBytes);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing to the local audit file failed ({ErrorType}); the events go to the spool")]
    private partial void LogWriteFailed(string errorType);
}
