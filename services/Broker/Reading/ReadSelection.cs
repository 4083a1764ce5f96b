using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Reading;

/// <summary>
/// What a read selects besides its path (version or stage, freshness), as a transport's request states it. It is
/// resolved inside the audited operation, so a malformed selector is refused and audited like any other refusal.
/// </summary>
public interface IReadSelection
{
    /// <summary>Converts the request's selection; throws INVALID_ARGUMENT when it is malformed.</summary>
    (VersionSelector Selector, ReadFreshness Freshness) Resolve();
}

/// <summary>A selection that is already valid (code that reads without a transport request).</summary>
public readonly record struct ReadSelection(VersionSelector Selector, ReadFreshness Freshness) : IReadSelection
{
    public (VersionSelector Selector, ReadFreshness Freshness) Resolve() => (Selector, Freshness);
}
