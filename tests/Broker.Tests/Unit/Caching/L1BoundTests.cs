using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Redis;
using ZiggyCreatures.Caching.Fusion;

namespace SecretsBroker.Broker.Tests.Unit.Caching;

/// <summary>L1 holds at most <c>Broker:Cache:L1MaxEntries</c> secrets, however many distinct secrets are read.</summary>
public sealed class L1BoundTests
{
    private static readonly MountDefinition Mount = new("mem", "memory");

    [Fact]
    public async Task Reading_more_distinct_secrets_than_L1MaxEntries_keeps_L1_within_it_and_every_answer_right()
    {
        var options = Options.Create(new CacheOptions { L1MaxEntries = 50 });
        using var memory = CachingExtensions.CreateMemoryCache(options.Value);
        var fusionOptions = new FusionCacheOptions();
        CachingExtensions.Configure(fusionOptions, options.Value);
        using var fusion = new FusionCache(fusionOptions, memory);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var keys = new CacheKeyRing(options);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:Mounts:0:Prefix"] = Mount.Prefix,
            ["Broker:Mounts:0:Type"] = Mount.Type,
            ["Broker:Mounts:0:Cache:Ttl"] = "01:00:00",
        }).Build();
        var cache = new SecretCache(fusion, keys, new MountCachePolicies(configuration, options), new CacheMetrics(services.GetRequiredService<IMeterFactory>()),
            new FakeTimeProvider(), options, Options.Create(new RedisOptions()), NullLogger<SecretCache>.Instance);
        var reader = new NamedReader();

        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 200; i++)
            {
                var name = $"s{i:D3}";
                var served = await cache.GetAsync(new ResolvedSecret($"{Mount.Prefix}/{name}", Mount, name, reader), VersionSelector.Latest,
                    ReadFreshness.Default, CancellationToken.None);
                Assert.Equal("FAKE-l1-bound-" + name, served.Value.Data!["password"]);
                Assert.InRange(memory.Count, 0, 50);
            }
        }
        Assert.InRange(memory.Count, 1, 50);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(100_000_001)]
    public void L1MaxEntries_outside_its_range_stops_the_broker_at_start(int entries)
    {
        var result = new CacheOptionsValidator(Options.Create(new RedisOptions())).Validate(null, new CacheOptions { L1MaxEntries = entries });

        Assert.True(result.Failed);
        Assert.Contains("Broker:Cache:L1MaxEntries must be between 1 and 100000000", result.FailureMessage);
    }

    /// <summary>A backend whose every secret answers a value derived from its name (no I/O).</summary>
    private sealed class NamedReader : ISecretReading
    {
        public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken) =>
            Task.FromResult(new SecretValue { Version = "1", Data = new Dictionary<string, string> { ["password"] = "FAKE-l1-bound-" + name } });
    }
}
