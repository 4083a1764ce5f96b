namespace SecretsBroker.Broker.Policy;

/// <summary>What a rule grants or denies on the paths it matches.</summary>
[Flags]
public enum Capability
{
    None = 0,
    Read = 1,
    List = 2,
    Issue = 4,
    Renew = 8,
    Revoke = 16,
    Watch = 32,
}
