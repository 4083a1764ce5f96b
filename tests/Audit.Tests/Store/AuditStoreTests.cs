using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Store;

/// <summary>The store in process: idempotence inside one batch and across writers sharing the file.</summary>
public sealed class AuditStoreTests : IDisposable
{
    private readonly TestDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task An_event_id_repeated_inside_one_batch_is_stored_once()
    {
        using var store = OpenStore();
        var auditEvent = TestEvents.Make("alice", "kv/a/b");
        var result = await store.AppendAsync([new("1-0", auditEvent), new("2-0", auditEvent.Clone()), new("3-0", TestEvents.Make("bob", "kv/a/c"))], [], default);

        Assert.Equal(2, result.Stored.Count);
        Assert.Equal(1, result.Duplicates);
        Assert.True(store.Verify(default).Ok);
    }

    [Fact]
    public async Task Two_writers_on_one_file_keep_one_unbroken_chain_and_store_each_event_once()
    {
        using var first = OpenStore();
        using var second = OpenStore();
        var events = Enumerable.Range(0, 400).Select(i => TestEvents.Make("alice", $"kv/a/{i}")).ToList();

        // Both writers get every event, in batches, at the same time, as two replicas would after a redelivery.
        await Task.WhenAll(
            Task.Run(async () =>
            {
                foreach (var batch in events.Chunk(20))
                {
                    await first.AppendAsync(batch.Select(e => new IncomingEvent("0-1", e)).ToList(), [], default);
                }
            }),
            Task.Run(async () =>
            {
                foreach (var batch in events.AsEnumerable().Reverse().Chunk(15))
                {
                    await second.AppendAsync(batch.Select(e => new IncomingEvent("0-2", e)).ToList(), [], default);
                }
            }));

        var verify = first.Verify(default);
        Assert.True(verify.Ok, verify.Detail);
        Assert.Equal(events.Count, verify.RecordsChecked);
        var stored = first.Query(new QueryFilter(0, 10_000));
        Assert.Equal(events.Select(e => e.Id).Order(), stored.Select(r => AuditEvent.Parser.ParseFrom(r.Record).Id).Order());
    }

    [Fact]
    public async Task Retention_with_nothing_old_deletes_nothing_and_sets_no_anchor()
    {
        using var store = OpenStore();
        await store.AppendAsync([new("1-0", TestEvents.Make("alice", "kv/a"))], [], default);

        Assert.Equal(0, await store.DeleteOlderThanAsync(DateTimeOffset.UtcNow.AddDays(-1), default));
        Assert.Null(store.ReadAnchor());
        Assert.Equal(1, await store.DeleteOlderThanAsync(DateTimeOffset.UtcNow.AddMinutes(1), default));
        Assert.Equal(1, store.ReadAnchor()!.Sequence);
        Assert.True(store.Verify(default).Ok);
    }

    private AuditStore OpenStore() => new(Options.Create(new StoreOptions { Path = "audit.db" }), new Environment(_directory.Path), TimeProvider.System);

    private sealed class Environment(string root) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Test";

        public string ApplicationName { get; set; } = "audit-tests";

        public string ContentRootPath { get; set; } = root;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
