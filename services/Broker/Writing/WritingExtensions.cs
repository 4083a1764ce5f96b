using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Writing;

public static class WritingExtensions
{
    /// <summary>Registers PutSecret's write path and its limits (<see cref="WriteOptions"/>).</summary>
    public static IHostApplicationBuilder AddBrokerWriting(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<WriteOptions>().BindConfiguration(WriteOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<WriteOptions>, WriteOptionsValidator>();
        builder.Services.AddSingleton<NewVersions>();
        builder.Services.AddSingleton<SecretWrites>();
        return builder;
    }
}
