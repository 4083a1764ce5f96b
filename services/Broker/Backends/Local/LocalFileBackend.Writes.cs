using System.Globalization;
using System.Text;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Local;

/// <summary>How a writable local mount stores writes: the file's format and the clock for new versions' <c>created</c>.</summary>
public sealed record LocalWriteSettings(bool IsYaml, TimeProvider TimeProvider);

// Writes append a version to the file: read it as it is on disk now (it may have been edited since the last reload),
// add the version with an explicit 'created' (so its time survives restarts), write a temporary file next to it with
// the same permissions, flush it to disk and rename it over the file (atomic on one file system: a reader sees the old
// or the new file, never half of one), then reload before answering. One write at a time per mount; comments in the
// file are not kept (the file is rewritten from its parsed form).
public sealed partial class LocalFileBackend
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public async Task<WrittenVersion> WriteVersionAsync(string name, SecretWrite write, CancellationToken cancellationToken)
    {
        if (_writes is null)
        {
            BrokerException.ThrowFailedPrecondition("this local mount is read-only; set 'Writable: true' on the mount to let PutSecret append versions to its file");
        }
        if (write.Stages is not null)
        {
            BrokerException.ThrowFailedPrecondition("local mounts have no stages; write without stages");
        }
        if ((write.Data is null) == (write.Binary is null))
        {
            BrokerException.ThrowInvalidArgument("a write needs exactly one of fields or bytes");
        }
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var path = _file.FullPath;
            var model = ReadForWrite(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false));
            model.Secrets ??= [];
            model.Secrets.TryGetValue(name, out var entry);
            var count = entry is null ? 0 : entry.Versions?.Count ?? 1;
            var current = count == 0 ? null : count.ToString(CultureInfo.InvariantCulture);
            if (!CheckAndSet.Matches(write.ExpectedVersion, current))
            {
                throw CheckAndSet.Mismatch(current);
            }
            // Whole milliseconds: the time written is the time read back, in every format.
            var now = _writes.TimeProvider.GetUtcNow();
            var created = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
            var version = new LocalSecretVersionModel
            {
                Data = write.Data is null ? null : new Dictionary<string, string>(write.Data, StringComparer.Ordinal),
                Binary = write.Binary is null ? null : Convert.ToBase64String(write.Binary),
                Created = created.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            };
            if (entry is null)
            {
                model.Secrets[name] = new LocalSecretModel { Versions = [version] };
            }
            else if (entry.Versions is null)
            {
                // A single value becomes the list's first version, unchanged (same content, same index: it keeps its time).
                model.Secrets[name] = new LocalSecretModel
                {
                    Versions = [new LocalSecretVersionModel { Data = entry.Data, Binary = entry.Binary, Created = entry.Created }, version],
                };
            }
            else
            {
                entry.Versions.Add(version);
            }
            await ReplaceAtomicallyAsync(path, LocalSecretFile.Write(model, _writes.IsYaml), cancellationToken).ConfigureAwait(false);
            if (!await _file.ReloadNowAsync().ConfigureAwait(false) || !_file.Current.Secrets.TryGetValue(name, out var loaded) || loaded.Length != count + 1)
            {
                BrokerException.ThrowUnavailable("the version was written to the local file but the file could not be reloaded; see the broker's log");
            }
            return new WrittenVersion((count + 1).ToString(CultureInfo.InvariantCulture), created);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private LocalSecretFileModel ReadForWrite(string content)
    {
        try
        {
            return LocalSecretFile.ReadModel(content, _writes!.IsYaml) ?? new LocalSecretFileModel();
        }
        catch (FormatException ex)
        {
            // Someone broke the file since the last reload: do not overwrite what they wrote.
            throw new BrokerException(BrokerErrorKind.FailedPrecondition, $"the local secrets file is invalid now, so it was not written: {ex.Message}");
        }
    }

    private static async Task ReplaceAtomicallyAsync(string path, string content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = File.GetUnixFileMode(path);
        }
        try
        {
            var stream = new FileStream(temp, options);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
