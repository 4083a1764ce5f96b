using SecretsBroker.Audit.Service;
using SecretsBroker.Audit.Service.Export;

if (args is ["export", .. var exportArgs])
{
    return await ExportCommand.RunAsync(exportArgs).ConfigureAwait(false);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddAuditService();

var app = builder.Build();
app.MapAuditService();
await app.RunAsync().ConfigureAwait(false);
return 0;
