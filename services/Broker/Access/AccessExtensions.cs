namespace SecretsBroker.Broker.Access;

public static class AccessExtensions
{
    /// <summary>Registers the access guard every feature goes through, and the credential lifetimes of streams.</summary>
    public static IHostApplicationBuilder AddBrokerAccess(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AccessGuard>();
        builder.Services.AddSingleton<StreamLifetimes>();
        return builder;
    }
}
