using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Time.Testing;

namespace SecretsBroker.VaultEmulator;

/// <summary>
/// Builds the emulator's web application. Flags (command line or configuration): <c>--root-token</c>
/// (default "root"), <c>--seed FILE</c> (JSON seed data), <c>--fake-time true</c> (a clock that only
/// moves through POST /__emulator/time), <c>--tls-cert-file</c> / <c>--tls-key-file</c> (PEM, for https:// URLs). Tests may host it in-process and pass their own clock.
/// </summary>
public static partial class VaultEmulatorApp
{
    public static WebApplication Build(string[] args, TimeProvider? timeProvider = null, JsonObject? seed = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.UseKestrelHttpsConfiguration();
        // Vault speaks HTTP/1.1 on plaintext; never inherit an HTTP/2-only default from a host's appsettings.json.
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Kestrel:EndpointDefaults:Protocols"] = "Http1AndHttp2" });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("SecretsBroker.VaultEmulator", LogLevel.Information);
        var configuration = builder.Configuration;
        var clock = timeProvider ?? (configuration.GetValue("fake-time", false) ? new FakeTimeProvider(DateTimeOffset.UtcNow) : TimeProvider.System);
        var state = new VaultState(clock, configuration["root-token"] ?? "root");
        state.Initialize();
        if (configuration["seed"] is { Length: > 0 } seedFile)
        {
            state.ApplySeed(JsonNode.Parse(File.ReadAllText(seedFile))!.AsObject());
        }
        if (seed is not null)
        {
            state.ApplySeed(seed);
        }
        if (configuration["tls-cert-file"] is { Length: > 0 } certFile)
        {
            // PEM certificate and key for https:// URLs, so clients can be tested against a private CA. Like Vault's
            // tls_cert_file (docs: "the primary certificate, followed by any intermediates"), certificates after
            // the first are sent as the chain.
            var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certFile, configuration["tls-key-file"]);
            var chain = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            chain.ImportFromPemFile(certFile);
            chain.RemoveAt(0);
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https =>
            {
                https.ServerCertificate = certificate;
                https.ServerCertificateChain = chain;
            }));
        }
        builder.Services.AddSingleton(state);
        builder.Services.AddSingleton<FaultState>();

        var app = builder.Build();
        var faults = app.Services.GetRequiredService<FaultState>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("SecretsBroker.VaultEmulator");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses ?? [];
            foreach (var address in addresses)
            {
                // Scripts wait for this exact line.
                Console.Out.WriteLine($"vault emulator listening on {address}");
                Console.Out.Flush();
            }
        });

        app.MapPost("/__emulator/faults", async (HttpContext context) =>
        {
            var body = await ReadBodyAsync(context.Request);
            faults.Apply(body ?? [], state);
            await WriteAsync(context.Response, new VaultResult(200, faults.Describe(state)));
        });
        app.MapDelete("/__emulator/faults", async (HttpContext context) =>
        {
            faults.Reset(state);
            await WriteAsync(context.Response, new VaultResult(200, faults.Describe(state)));
        });
        app.MapGet("/__emulator/faults", (HttpContext context) => WriteAsync(context.Response, new VaultResult(200, faults.Describe(state))));
        app.MapGet("/__emulator/leases", (HttpContext context) =>
            WriteAsync(context.Response, new VaultResult(200, new JsonObject { ["leases"] = state.DescribeLeases() })));
        app.MapPost("/__emulator/time", async (HttpContext context) =>
        {
            if (clock is not FakeTimeProvider fake)
            {
                await WriteAsync(context.Response, VaultResult.BadRequest("the emulator runs on the real clock; start it with --fake-time true"));
                return;
            }
            var body = await ReadBodyAsync(context.Request);
            fake.Advance(TimeSpan.FromSeconds(body?["advance_seconds"]?.GetValue<double>() ?? 0));
            await WriteAsync(context.Response, new VaultResult(200, new JsonObject { ["now"] = Formats.Time(fake.GetUtcNow()) }));
        });

        app.Map("/v1/{**path}", async (HttpContext context, string? path) =>
        {
            path ??= "";
            var request = context.Request;
            if (faults.LatencyMs > 0)
            {
                await Task.Delay(faults.LatencyMs, context.RequestAborted);
            }
            if (faults.RejectListVerb && request.Method == "LIST")
            {
                await WriteAsync(context.Response, VaultResult.Error(405, "method LIST is not allowed"));
                return;
            }
            switch (faults.Next(path))
            {
                case FaultState.Action.Drop:
                    LogDropped(logger, request.Method);
                    context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                    context.Abort();
                    return;
                case FaultState.Action.RateLimit:
                    var headers = faults.RetryAfterSeconds > 0
                        ? new Dictionary<string, string> { ["Retry-After"] = faults.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) }
                        : null;
                    await WriteAsync(context.Response, VaultResult.Error(429, $"request path \"{path}\": rate limit quota exceeded") with { Headers = headers });
                    return;
                case FaultState.Action.Error:
                    // A failure inside Vault (storage, a plugin) is an uncoded error: sdk/logical/response_util.go,
                    // RespondErrorCommon answers 500 and RespondError writes {"errors":[err.Error()]}; nothing was changed.
                    await WriteAsync(context.Response, VaultResult.Error(faults.ErrorStatus, "internal error"));
                    return;
            }
            if (path.TrimEnd('/') == "sys/health" && request.Method is "GET" or "HEAD")
            {
                var query = request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal);
                var health = state.Health(query);
                if (request.Method == "HEAD")
                {
                    context.Response.StatusCode = health.Status;
                    return;
                }
                await WriteAsync(context.Response, health);
                return;
            }
            JsonObject? body;
            try
            {
                body = await ReadBodyAsync(request);
            }
            catch (JsonException)
            {
                await WriteAsync(context.Response, VaultResult.BadRequest("failed to parse JSON input"));
                return;
            }
            var token = request.Headers["X-Vault-Token"].ToString();
            if (token.Length == 0 && request.Headers.Authorization.ToString() is { } bearer && bearer.StartsWith("Bearer ", StringComparison.Ordinal))
            {
                token = bearer["Bearer ".Length..];
            }
            var vaultRequest = new VaultRequest(
                request.Method.ToUpperInvariant(),
                path,
                request.Headers["X-Vault-Namespace"].ToString().Trim('/'),
                token.Length == 0 ? null : token,
                body,
                request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal));
            var result = state.Handle(vaultRequest);
            LogCall(logger, vaultRequest.Method, result.Status);
            if (faults.DelayAfterHandling(path) is > 0 and var delay)
            {
                await Task.Delay(delay, CancellationToken.None);
            }
            switch (faults.AfterHandling(path))
            {
                case 0:
                    LogDropped(logger, request.Method);
                    context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                    context.Abort();
                    return;
                case { } status:
                    await WriteAsync(context.Response, VaultResult.Error(status, "the response was lost after the request was handled"));
                    return;
            }
            await WriteAsync(context.Response, result);
        });
        return app;
    }

    private static async Task<JsonObject?> ReadBodyAsync(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(request.HttpContext.RequestAborted);
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        return JsonNode.Parse(text) as JsonObject ?? throw new JsonException("body is not a JSON object");
    }

    private static async Task WriteAsync(HttpResponse response, VaultResult result)
    {
        response.StatusCode = result.Status;
        foreach (var (name, value) in result.Headers ?? new Dictionary<string, string>())
        {
            response.Headers[name] = value;
        }
        if (result.Body is null)
        {
            return;
        }
        response.ContentType = "application/json";
        await response.WriteAsync(result.Body.ToJsonString() + "\n");
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Method} answered {Status}")]
    private static partial void LogCall(ILogger logger, string method, int status);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fault: dropped the connection of a {Method} call")]
    private static partial void LogDropped(ILogger logger, string method);
}
