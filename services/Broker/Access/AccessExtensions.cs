namespace SecretsBroker.Broker.Access;

public static class AccessExtensions
{
    /// <summary>Registers the access guard every feature goes through.</summary>
    public static IHostApplicationBuilder AddBrokerAccess(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AccessGuard>();
        return builder;
    }
}
