using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Infrastructure;

/// <summary>Base of tests that run the audit service against their own redis-server and store folder.</summary>
public abstract class RedisAndStoreTest : IAsyncLifetime
{
    protected TestDirectory Directory { get; } = new();

    protected RedisServer Redis { get; private set; } = null!;

    /// <summary>The store file in this test's folder.</summary>
    protected string StorePath => Path.Combine(Directory.Path, "audit.db");

    public async Task InitializeAsync() => Redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        await Redis.DisposeAsync();
        Directory.Dispose();
    }
}
