using SecretsBroker.Audit.Service;
using SecretsBroker.Audit.Service.Export;

if (args is ["export", .. var exportArgs])
{
    return await ExportCommand.RunAsync(exportArgs);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddAuditService();

var app = builder.Build();
app.MapAuditService();
await app.RunAsync();
return 0;
