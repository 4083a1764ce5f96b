using Microsoft.Extensions.Options;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// Deletes records older than <see cref="StoreOptions.RetentionDays"/> at start and every
/// <see cref="StoreOptions.RetentionInterval"/>; does nothing when RetentionDays is 0.
/// </summary>
public sealed partial class RetentionService(IAuditStore store, IOptions<StoreOptions> options, TimeProvider time, ILogger<RetentionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (settings.RetentionDays == 0)
        {
            return;
        }
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var cutoff = time.GetUtcNow() - TimeSpan.FromDays(settings.RetentionDays);
                var deleted = await store.DeleteOlderThanAsync(cutoff, stoppingToken).ConfigureAwait(false);
                if (deleted > 0)
                {
                    LogDeleted(logger, deleted, settings.RetentionDays, store.ReadAnchor()?.Sequence ?? 0);
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogFailed(logger, exception.GetType().Name, exception.Message);
            }
            try
            {
                await Task.Delay(settings.RetentionInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {Count} records older than {Days} days; the chain is anchored at sequence {AnchorSequence}")]
    private static partial void LogDeleted(ILogger logger, long count, int days, long anchorSequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention failed ({ExceptionType}: {Reason}); retrying at the next interval")]
    private static partial void LogFailed(ILogger logger, string exceptionType, string reason);
}
