using System.Security.Cryptography;

namespace SecretsBroker.Client.Envelope;

public sealed partial class EnvelopeEncryption
{
    private const int FileBufferSize = 1 << 16;

    /// <summary>
    /// Encrypts the file at <paramref name="sourcePath"/> to <paramref name="destinationPath"/>. The output is
    /// written to a temporary file beside the destination and renamed over it once complete.
    /// </summary>
    public Task<EnvelopeHeader> EncryptFileAsync(string sourcePath, string destinationPath, string keyPath, IReadOnlyDictionary<string, string>? context = null,
        CancellationToken cancellationToken = default) =>
        WithSourceAsync(sourcePath, destinationPath, (source, destination) => EncryptAsync(source, destination, keyPath, context, cancellationToken), cancellationToken);

    /// <summary>
    /// Decrypts the envelope file at <paramref name="sourcePath"/> to <paramref name="destinationPath"/>:
    /// plaintext goes to a temporary file (mode 0600) in the destination's directory, which is renamed over
    /// the destination only after the last chunk authenticated; on any failure it is deleted and the
    /// destination is left as it was.
    /// </summary>
    /// <exception cref="EnvelopeException">The file is malformed, truncated, tampered with, or not for this key or context.</exception>
    public Task<EnvelopeHeader> DecryptFileAsync(string sourcePath, string destinationPath, IReadOnlyDictionary<string, string>? context = null,
        string? expectedKeyPath = null, CancellationToken cancellationToken = default) =>
        WithSourceAsync(sourcePath, destinationPath, (source, destination) => DecryptAsync(source, destination, context, expectedKeyPath, cancellationToken), cancellationToken);

    private static async Task<EnvelopeHeader> WithSourceAsync(string sourcePath, string destinationPath, Func<Stream, Stream, Task<EnvelopeHeader>> transform,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourcePath);
        ArgumentException.ThrowIfNullOrEmpty(destinationPath);
        var source = new FileStream(sourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileBufferSize, useAsync: true);
        await using (source.ConfigureAwait(false))
        {
            return await WriteAtomicallyAsync(destinationPath, destination => transform(source, destination), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> into a fresh temporary file (mode 0600) beside <paramref name="path"/> and
    /// renames it over <paramref name="path"/> on success only; on failure the temporary file is deleted.
    /// </summary>
    public static async Task<T> WriteAtomicallyAsync<T>(string path, Func<Stream, Task<T>> write, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory", nameof(path));
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.partial");
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = FileBufferSize,
            Options = FileOptions.Asynchronous,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        try
        {
            T result;
            var destination = new FileStream(temporary, options);
            await using (destination.ConfigureAwait(false))
            {
                result = await write(destination).ConfigureAwait(false);
                await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
                destination.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
            return result;
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
