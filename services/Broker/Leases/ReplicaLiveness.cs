using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Leases;

/// <summary>
/// Crash safety of leases across replicas. Every <see cref="LeaseOptions.ReplicaHeartbeat"/> this replica records in the
/// registry that it is alive, then looks for replicas silent for <see cref="LeaseOptions.ReplicaSilentAfter"/>: the one
/// survivor that claims a silent replica hands each lease it still held to the grace period, exactly as if its streams had
/// ended. A client that re-attaches (to any replica) within the grace period keeps its lease; the rest are revoked by
/// <see cref="OrphanLeaseSweeper"/>. A replica that was only paused finds itself unknown at its next beat and takes back the
/// leases its open streams still hold.
/// </summary>
public sealed partial class ReplicaLiveness(
    LeaseKeeper keeper,
    LeaseRecords records,
    LeaseMetrics metrics,
    IOptions<LeaseOptions> options,
    TimeProvider time,
    ILogger<ReplicaLiveness> logger) : BackgroundService
{
    private readonly LeaseOptions _options = options.Value;
    private bool _known;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.ReplicaHeartbeat, time);
        try
        {
            do
            {
                await BeatAsync().ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>One beat: record this replica as alive, reclaim after a silence, hand over the leases of silent replicas.</summary>
    public async Task BeatAsync()
    {
        try
        {
            var registry = records.Registry;
            var now = time.GetUtcNow();
            var wasKnown = await registry.HeartbeatAsync(keeper.ReplicaId, now).ConfigureAwait(false);
            if (!wasKnown && _known)
            {
                LogReclaimed(await keeper.ReclaimAsync().ConfigureAwait(false));
            }
            _known = true;
            foreach (var replica in await registry.ClaimSilentReplicasAsync(keeper.ReplicaId, now - _options.ReplicaSilentAfter, 16).ConfigureAwait(false))
            {
                var handedOver = await registry.OrphanLeasesOfAsync(replica, now + _options.GracePeriod).ConfigureAwait(false);
                metrics.SilentReplicaLeases(handedOver);
                LogSilentReplica(_options.ReplicaSilentAfter.TotalSeconds, handedOver);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogBeatFailed(ex.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A replica was silent for over {Seconds} s: its {Count} leases wait the grace period for their clients to re-attach")]
    private partial void LogSilentReplica(double seconds, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "This replica was silent long enough to be taken for crashed; it took back {Count} leases its streams still hold")]
    private partial void LogReclaimed(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Replica heartbeat failed ({ErrorType}); it runs again at the next interval")]
    private partial void LogBeatFailed(string errorType);
}
