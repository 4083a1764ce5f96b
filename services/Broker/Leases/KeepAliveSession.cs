using System.Collections.Concurrent;
using System.Threading.Channels;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Leases;

/// <summary>One KeepAlive stream: its caller, the leases attached to it, and the events waiting to be sent.</summary>
public sealed class KeepAliveSession(AccessContext access)
{
    public string Id { get; } = Guid.NewGuid().ToString("n");

    public AccessContext Access { get; } = access;

    public CallerIdentity Caller => Access.Caller!;

    public Channel<LeaseNotice> Events { get; } = Channel.CreateUnbounded<LeaseNotice>(new UnboundedChannelOptions { SingleReader = true });

    public ConcurrentDictionary<string, LeaseState> Leases { get; } = new(StringComparer.Ordinal);

    public bool Ended { get; set; }

    public void Send(LeaseNotice notice)
    {
        if (!Ended)
        {
            Events.Writer.TryWrite(notice);
        }
    }
}
