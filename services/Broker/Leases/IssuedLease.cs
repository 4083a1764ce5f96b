namespace SecretsBroker.Broker.Leases;

/// <summary>Credentials with their lease, as issued (or rotated to).</summary>
public sealed record IssuedLease(string LeaseId, string Path, IReadOnlyDictionary<string, string> Credentials, TimeSpan Ttl, bool Renewable,
    DateTimeOffset ExpiresAt)
{
    public override string ToString() => $"IssuedLease {{ Ttl = {Ttl}, Renewable = {Renewable}, Fields = {Credentials.Count} }}";
}
