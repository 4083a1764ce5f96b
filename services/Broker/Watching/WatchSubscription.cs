using System.Collections.Concurrent;
using System.Threading.Channels;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Watching;

/// <summary>One WatchSecrets call: who watches, what it watches, and the changes waiting to be sent.</summary>
public sealed class WatchSubscription(AccessContext access, IReadOnlyCollection<string> paths, IReadOnlyCollection<string> prefixes)
{
    public AccessContext Access { get; } = access;

    public IReadOnlyCollection<string> Paths { get; } = paths;

    public IReadOnlyCollection<string> Prefixes { get; } = prefixes;

    /// <summary>
    /// The version of each watched secret when this watch began. The shared known version can be older (nobody polled the
    /// path while nobody watched it), so the first event of a path is dropped when it names this version: it was written
    /// before the watch began, and is no change for this subscriber.
    /// </summary>
    public ConcurrentDictionary<string, string> Baselines { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="message"/> is news to this subscriber (consumes the path's baseline).</summary>
    public bool IsNews(WatchMessage message) => !Baselines.TryRemove(message.Path, out var baseline) || baseline != message.Version;

    public Channel<WatchMessage> Events { get; } = Channel.CreateUnbounded<WatchMessage>(new UnboundedChannelOptions { SingleReader = true });

    public bool Matches(string path) => Paths.Contains(path) || Prefixes.Any(p => path.StartsWith(p + "/", StringComparison.Ordinal));

    public IEnumerable<WatchTarget> Targets(DateTimeOffset now) =>
        Paths.Select(p => new WatchTarget(p, false, now)).Concat(Prefixes.Select(p => new WatchTarget(p, true, now)));
}
