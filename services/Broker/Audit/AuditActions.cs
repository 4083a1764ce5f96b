namespace SecretsBroker.Broker.Audit;

/// <summary>The actions audit events name.</summary>
public static class AuditActions
{
    public const string Authenticate = "authenticate";
    public const string Read = "read";
    public const string RateLimit = "rate-limit";
    public const string List = "list";
    public const string Issue = "issue";
    public const string Renew = "renew";
    public const string Revoke = "revoke";
    public const string Rotate = "rotate";
    public const string Watch = "watch";
    public const string Write = "write";
}
