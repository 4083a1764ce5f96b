namespace SecretsBroker.Broker.Tests.Unit.Support;

/// <summary>
/// A bound on how long a unit test waits for a condition it expects (a TaskCompletionSource set by the code
/// under test). It is a safety net so a regression fails the test instead of hanging the run, never a sleep:
/// passing tests finish as soon as the condition holds.
/// </summary>
public static class TaskGuards
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    public static Task OrTimeout(this Task task) => task.WaitAsync(Limit);

    public static Task<T> OrTimeout<T>(this Task<T> task) => task.WaitAsync(Limit);
}
