namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>Waits on a condition instead of sleeping a fixed time.</summary>
public static class Eventually
{
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? because = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"condition not met within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds:0}s: {because}");
            }
            await Task.Delay(25);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? because = null) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, because);
}
