using Microsoft.Extensions.Options;
using SecretsBroker.Broker;

try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddBroker();

    var app = builder.Build();
    app.MapBroker();
    await app.RunAsync().ConfigureAwait(false);
    return 0;
}
catch (OptionsValidationException ex)
{
    // A configuration the broker refuses: the failures name their keys; a stack trace would only bury them.
    await Console.Error.WriteLineAsync("secretsbroker: the configuration is invalid: " + string.Join("; ", ex.Failures)).ConfigureAwait(false);
    return 1;
}
