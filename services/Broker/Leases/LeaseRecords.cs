using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// The lease registry as lease work uses it: a failed read is UNAVAILABLE for the caller, and a failed write is
/// logged and tolerated (the lease still expires at its TTL in the backend). Logs carry mounts and error types only.
/// </summary>
public sealed partial class LeaseRecords(ILeaseRegistry registry, ILogger<LeaseRecords> logger)
{
    public ILeaseRegistry Registry => registry;

    /// <summary>The record, or null; UNAVAILABLE when the registry cannot be read.</summary>
    public async Task<LeaseRecord?> GetAsync(string leaseId, string mount = "")
    {
        try
        {
            return await registry.GetAsync(leaseId).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not BrokerException)
        {
            LogFailed(mount, ex.GetType().Name);
            throw new BrokerException(BrokerErrorKind.Unavailable, "the lease registry is unavailable; retry later");
        }
    }

    public Task<bool> TrySaveAsync(LeaseRecord record, string mount) => TryAsync(() => registry.SaveAsync(record), mount);

    public Task<bool> TryDeleteAsync(string leaseId, string mount = "") => TryAsync(() => registry.DeleteAsync(leaseId), mount);

    public Task<bool> TryTakeOverAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt, string mount) =>
        TryAsync(() => registry.TakeOverAsync(leaseId, owner, streamId, expiresAt), mount);

    public Task<bool> TryReleaseAsync(string leaseId, string owner, string streamId, DateTimeOffset? revokeAt, string mount) =>
        TryAsync(() => registry.ReleaseAsync(leaseId, owner, streamId, revokeAt), mount);

    /// <summary>Takes the lease back for this stream if nobody holds it; false when someone does or the registry failed (logged).</summary>
    public async Task<bool> TryReclaimAsync(string leaseId, string owner, string streamId, DateTimeOffset expiresAt, string mount)
    {
        try
        {
            return await registry.ReclaimAsync(leaseId, owner, streamId, expiresAt).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(mount, ex.GetType().Name);
            return false;
        }
    }

    /// <summary>Logs a registry failure seen elsewhere (same message for every caller).</summary>
    public void ReportFailure(string mount, Exception exception) => LogFailed(mount, exception.GetType().Name);

    private async Task<bool> TryAsync(Func<Task> operation, string mount)
    {
        try
        {
            await operation().ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(mount, ex.GetType().Name);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lease registry operation failed for mount {Mount} ({ErrorType})")]
    private partial void LogFailed(string mount, string errorType);
}
