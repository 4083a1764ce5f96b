using SecretsBroker.Broker;

var builder = WebApplication.CreateBuilder(args);
builder.AddBroker();

var app = builder.Build();
app.MapBroker();
app.Run();
