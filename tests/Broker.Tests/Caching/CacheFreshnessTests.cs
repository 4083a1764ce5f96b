using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.Caching;

/// <summary>The in-process cache (no Redis configured): sources, ages, stale serving and per-request freshness.</summary>
[Trait("Category", "Integration")]
public sealed class CacheFreshnessTests
{
    private static readonly Dictionary<string, string> Db = new() { ["password"] = "FAKE-fresh-password" };

    [Fact]
    public async Task Without_Redis_a_second_read_is_served_from_L1_with_its_age()
    {
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        // The broker's clock is fake, so the age it reports is exactly the time advanced. FusionCache's own
        // expiry runs on the real clock; the 10 minute TTL keeps the value in L1 for the whole test.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.InProcessOnly().MemoryMount(ttl: "00:10:00"),
            configureServices: builder =>
            {
                memory.Register(builder);
                builder.Services.AddSingleton<TimeProvider>(time);
            });
        var client = host.CreateClient();

        var first = await client.GetSecretAsync("mem/db");
        time.Advance(TimeSpan.FromSeconds(42));
        var second = await client.GetSecretAsync("mem/db");

        Assert.Equal(ValueSource.Backend, first.Serving.Source);
        Assert.Equal(TimeSpan.Zero, first.Serving.Age.ToTimeSpan());
        Assert.Equal(ValueSource.L1, second.Serving.Source);
        Assert.Equal(TimeSpan.FromSeconds(42), second.Serving.Age.ToTimeSpan());
        Assert.False(second.Serving.Stale);
        Assert.Equal(1, memory.ReadsOf("db"));
    }

    [Fact]
    public async Task Bypass_cache_and_max_age_read_the_backend()
    {
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.InProcessOnly().MemoryMount(), configureServices: memory.Register);
        var raw = host.CreateClient().Raw;
        await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db" });

        var bypassed = (await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db", BypassCache = true })).Secret;
        Assert.Equal(ValueSource.Backend, bypassed.Serving.Source);
        Assert.Equal(2, memory.ReadsOf("db"));

        await Eventually.WaitUntilAsync(async () =>
            (await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db" })).Secret.Serving.Age.ToTimeSpan() > TimeSpan.FromMilliseconds(20),
            because: "the cached value to age past 20 ms");
        var reads = memory.ReadsOf("db");
        var bounded = (await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db", MaxAge = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(20)) })).Secret;
        Assert.Equal(ValueSource.Backend, bounded.Serving.Source);
        Assert.Equal(reads + 1, memory.ReadsOf("db"));

        var relaxed = (await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db", MaxAge = Duration.FromTimeSpan(TimeSpan.FromHours(1)) })).Secret;
        Assert.Equal(ValueSource.L1, relaxed.Serving.Source);

        var negative = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.GetSecretAsync(new GetSecretRequest { Path = "mem/db", MaxAge = new Duration { Seconds = -1 } }));
        Assert.Equal(StatusCode.InvalidArgument, negative.StatusCode);
    }

    [Fact]
    public async Task With_the_backend_down_the_cached_value_is_served_stale_within_max_staleness_then_UNAVAILABLE()
    {
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        await using var host = await BrokerHost.StartAsync(
            CacheTestSettings.InProcessOnly().MemoryMount(ttl: "00:00:00.300", maxStaleness: "00:00:02.500"), configureServices: memory.Register);
        var client = host.CreateClient();
        var fetched = DateTime.UtcNow;
        await client.GetSecretAsync("mem/db");

        memory.Down = true;

        Secret? stale = null;
        await Eventually.WaitUntilAsync(async () => (stale = await client.GetSecretAsync("mem/db")).Serving.Stale, because: "the TTL to pass with the backend down");
        Assert.Equal("FAKE-fresh-password", stale!.Data["password"]);
        Assert.NotEqual(ValueSource.Backend, stale.Serving.Source);
        Assert.InRange(stale.Serving.Age.ToTimeSpan(), TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(2500));

        RpcException? unavailable = null;
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                var served = await client.GetSecretAsync("mem/db");
                Assert.True(served.Serving.Stale);
                Assert.InRange(served.Serving.Age.ToTimeSpan(), TimeSpan.Zero, TimeSpan.FromMilliseconds(2500));
                return false;
            }
            catch (RpcException ex)
            {
                unavailable = ex;
                return true;
            }
        }, because: "the max staleness to pass");
        Assert.Equal(StatusCode.Unavailable, unavailable!.StatusCode);
        Assert.True(DateTime.UtcNow - fetched >= TimeSpan.FromMilliseconds(2500), "UNAVAILABLE came before the max staleness passed");

        memory.Down = false;
        var recovered = await client.GetSecretAsync("mem/db");
        Assert.Equal(ValueSource.Backend, recovered.Serving.Source);
        Assert.False(recovered.Serving.Stale);
    }

    [Fact]
    public async Task A_max_staleness_below_the_TTL_stops_the_broker_with_a_message_naming_the_setting()
    {
        var settings = CacheTestSettings.InProcessOnly().MemoryMount(ttl: "00:05:00", maxStaleness: "00:01:00");

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => BrokerHost.StartAsync(settings, configureServices: new InMemoryBackend().Register));

        Assert.Contains("Broker:Mounts:0:Cache:MaxStaleness must be at least the TTL", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NOT_FOUND_from_the_backend_is_never_hidden_behind_a_cached_value()
    {
        var memory = new InMemoryBackend();
        memory.Put("db", "1", Db);
        // Fail-safe is on (max staleness far above the TTL): an outage now would be answered with the cached value.
        // Eager refresh is off, so the backend is asked again only once the TTL has passed.
        var settings = CacheTestSettings.InProcessOnly().MemoryMount(ttl: "00:00:00.100", maxStaleness: "01:00:00");
        settings["Broker:Cache:EagerRefreshThreshold"] = "0";
        await using var host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
        var client = host.CreateClient();
        Assert.Equal(ValueSource.Backend, (await client.GetSecretAsync("mem/db")).Serving.Source);

        memory.Remove("db");

        // Until the TTL passes L1 answers (without asking the backend); after it, the backend's NOT_FOUND is the answer.
        RpcException? missing = null;
        await Eventually.WaitUntilAsync(async () =>
        {
            try
            {
                await client.GetSecretAsync("mem/db");
                // A value once the backend was asked again can only be the cached one standing in for its NOT_FOUND.
                Assert.True(memory.ReadsOf("db") == 1, "the deleted secret was answered with its cached value after the backend said NOT_FOUND");
                return false;
            }
            catch (RpcException ex)
            {
                missing = ex;
                return true;
            }
        }, because: "the TTL to pass and the backend to be read again");
        Assert.Equal(StatusCode.NotFound, missing!.StatusCode);
    }
}
