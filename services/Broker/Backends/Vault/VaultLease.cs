namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Dynamic credentials and their lease as Vault issued (or renewed) them. <see cref="Data"/> holds the
/// credential fields; it is empty after a renewal.
/// </summary>
public sealed record VaultLease(string LeaseId, TimeSpan Duration, bool Renewable, IReadOnlyDictionary<string, string> Data, IReadOnlyList<string> Warnings)
{
    public override string ToString() => $"VaultLease {{ Duration = {Duration}, Renewable = {Renewable}, Fields = {Data.Count} }}";
}
