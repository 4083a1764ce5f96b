using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Crypto;

public static class CryptoExtensions
{
    /// <summary>Registers encryption as a service (the key store mount types are registered with the backends).</summary>
    public static IHostApplicationBuilder AddBrokerCrypto(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<CryptoOptions>().BindConfiguration(CryptoOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<CryptoOptions>, CryptoOptionsValidator>();
        builder.Services.AddSingleton<CryptoOperations>();
        return builder;
    }
}
