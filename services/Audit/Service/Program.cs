using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Service;
using SecretsBroker.Audit.Service.Export;

if (args is ["export", .. var exportArgs])
{
    return await ExportCommand.RunAsync(exportArgs).ConfigureAwait(false);
}

try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddAuditService();

    var app = builder.Build();
    // Every options class is validated before anything starts, so a bad setting is reported once, without a stack trace.
    app.Services.GetRequiredService<IStartupValidator>().Validate();
    app.MapAuditService();
    await app.RunAsync().ConfigureAwait(false);
    return 0;
}
catch (Exception ex) when (ex is OptionsValidationException || ex is AggregateException { InnerExceptions: var inner } && inner.All(e => e is OptionsValidationException))
{
    var failures = ex is AggregateException aggregate
        ? aggregate.InnerExceptions.Cast<OptionsValidationException>().SelectMany(e => e.Failures)
        : ((OptionsValidationException)ex).Failures;
    // A configuration the service refuses: the failures name their keys; a stack trace would only bury them.
    await Console.Error.WriteLineAsync("secretsbroker-audit: the configuration is invalid: " + string.Join("; ", failures)).ConfigureAwait(false);
    return 1;
}
