using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Reading;

public static class ReadingExtensions
{
    /// <summary>Registers the read path and the request limits of <see cref="BrokerOptions"/>.</summary>
    public static IHostApplicationBuilder AddBrokerReading(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<BrokerOptions>().BindConfiguration(BrokerOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();
        builder.Services.AddSingleton<ListingPageTokens>();
        builder.Services.AddSingleton<SecretReader>();
        return builder;
    }
}
