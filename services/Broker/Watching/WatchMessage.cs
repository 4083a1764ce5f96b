using System.Text.Json.Serialization;

namespace SecretsBroker.Broker.Watching;

/// <summary>A detected change as published to every replica (sealed on Redis pub/sub).</summary>
public sealed record WatchMessage(string Path, string Version, DateTimeOffset Time);

/// <summary>A watched path or prefix, as shared between replicas so the polling replica knows what to poll.</summary>
public sealed record WatchTarget(string Path, bool IsPrefix, DateTimeOffset LastSeen);

[JsonSerializable(typeof(WatchMessage))]
[JsonSerializable(typeof(WatchTarget))]
internal sealed partial class WatchJsonContext : JsonSerializerContext;
