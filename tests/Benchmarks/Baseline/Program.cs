using SecretsBroker.Benchmarks.Baseline;

// Same Kestrel settings as the broker (appsettings.json: HTTP/2 only on 127.0.0.1); the answers are the
// broker's own responses for the benchmark secrets, captured by the harness, so payload sizes match.
var builder = WebApplication.CreateBuilder(args);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(endpoint =>
    endpoint.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
builder.Services.AddGrpc(options => options.EnableDetailedErrors = false);
builder.Services.AddSingleton(FixedAnswers.Load(builder.Configuration));

var app = builder.Build();
app.MapGrpcService<FixedAnswerService>();
app.Run();
