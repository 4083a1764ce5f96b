using System.Threading.Channels;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Watching;

/// <summary>One WatchSecrets call: who watches, what it watches, and the changes waiting to be sent.</summary>
public sealed class WatchSubscription(AccessContext access, IReadOnlyCollection<string> paths, IReadOnlyCollection<string> prefixes)
{
    public AccessContext Access { get; } = access;

    public IReadOnlyCollection<string> Paths { get; } = paths;

    public IReadOnlyCollection<string> Prefixes { get; } = prefixes;

    public Channel<WatchMessage> Events { get; } = Channel.CreateUnbounded<WatchMessage>(new UnboundedChannelOptions { SingleReader = true });

    public bool Matches(string path) => Paths.Contains(path) || Prefixes.Any(p => path.StartsWith(p + "/", StringComparison.Ordinal));

    public IEnumerable<WatchTarget> Targets(DateTimeOffset now) =>
        Paths.Select(p => new WatchTarget(p, false, now)).Concat(Prefixes.Select(p => new WatchTarget(p, true, now)));
}
