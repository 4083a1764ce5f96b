namespace SecretsBroker.Audit.Service.Ingestion;

/// <summary>
/// Tells <c>AuditLog.Tail</c> streams that ingestion committed a batch, so they read the store right away
/// instead of polling it often. Take <see cref="Next"/> <em>before</em> reading the store: a commit after that
/// read completes the task taken, so nothing stored in between is missed until the next notification.
/// </summary>
public sealed class StoredEventsSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next <see cref="Notify"/>.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    /// <summary>Called after a batch is durable in the store.</summary>
    public void Notify() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
