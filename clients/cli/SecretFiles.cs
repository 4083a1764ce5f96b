namespace SecretsBroker.Cli;

/// <summary>
/// Files that hold secrets: written atomically with mode 0600 (a reader sees the old content or the new,
/// never a partial file), in private directories (0700) on tmpfs where there is one, so nothing reaches a disk.
/// </summary>
internal static class SecretFiles
{
    public const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> unless it already holds exactly that; returns whether
    /// it wrote. The temporary file is created 0600 in the same directory (rename(2) is atomic only within one file
    /// system), flushed to the device, then renamed over the target.
    /// </summary>
    public static bool WriteAtomically(string path, byte[] content)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full) && File.ReadAllBytes(full).AsSpan().SequenceEqual(content))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(full, OwnerReadWrite);
            }
            return false;
        }
        var directory = Path.GetDirectoryName(full)!;
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerReadWrite;
            }
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
            return true;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>
    /// A new directory only the current user can enter, under $XDG_RUNTIME_DIR (a per-user tmpfs), else /dev/shm
    /// (tmpfs), else the temporary folder; <paramref name="root"/> overrides the choice.
    /// </summary>
    public static string CreatePrivateDirectory(string? root)
    {
        root ??= new[] { Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"), "/dev/shm" }.FirstOrDefault(IsWritableDirectory) ?? Path.GetTempPath();
        var directory = Path.Combine(root, $"brokerctl-{Guid.NewGuid():N}");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, OwnerOnly);
            // The process umask cannot widen an explicit mode, but make it certain.
            File.SetUnixFileMode(directory, OwnerOnly);
        }
        return directory;
    }

    /// <summary>Removes the directory and everything in it; a failure is reported, not thrown (the command's exit code matters more).</summary>
    public static void RemoveDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            CliOutput.WriteError("CLEANUP_FAILED", $"could not remove the secrets directory {directory}: {ex.Message}");
        }
    }

    private static bool IsWritableDirectory(string? path)
    {
        if (string.IsNullOrEmpty(path) || !Directory.Exists(path))
        {
            return false;
        }
        try
        {
            var probe = Path.Combine(path, $".brokerctl-probe-{Guid.NewGuid():N}");
            Directory.CreateDirectory(probe);
            Directory.Delete(probe);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
